select coalesce(sum(payments.amount), 0) as total
from {{ ref('orders') }}
join {{ ref('payments') }} on orders.order_id = payments.order_id
where payments.amount >= {{ var('min_amount') }}
