-- What each order has been paid. Payments for orders that are not among the orders are
-- left out; orders without payments have no row here (order_totals counts them as 0).
select
    stg_orders.order_id,
    count(stg_payments.payment_id) as payment_count,
    sum(stg_payments.amount_cents) as paid_cents
from {{ ref('stg_orders') }}
join {{ ref('stg_payments') }} on stg_orders.order_id = stg_payments.order_id
group by stg_orders.order_id
