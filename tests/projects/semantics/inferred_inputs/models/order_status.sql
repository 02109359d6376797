select status, count(*) as orders, sum(amount_cents) as amount_cents
from {{ ref('stg_orders') }}
group by status
