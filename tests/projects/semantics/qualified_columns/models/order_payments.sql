-- Two request inputs joined, every column qualified by its relation's name.
select
    orders.order_id,
    orders.customer,
    count(payments.payment_id) as payment_count,
    sum(payments.amount) as paid
from {{ ref('orders') }}
join {{ ref('payments') }} on orders.order_id = payments.order_id
group by orders.order_id, orders.customer
