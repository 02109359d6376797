select
    stg_customers.customer_id,
    stg_customers.name,
    count(stg_orders.order_id) as orders,
    coalesce(sum(stg_orders.amount_cents), 0) as amount_cents
from {{ ref('stg_customers') }}
left join {{ ref('stg_orders') }} on stg_orders.customer_id = stg_customers.customer_id
group by stg_customers.customer_id, stg_customers.name
