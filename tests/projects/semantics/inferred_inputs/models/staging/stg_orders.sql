select
    id as order_id,
    customer_id,
    amount_cents,
    status
from {{ source('raw', 'orders') }}
where status <> 'returned'
