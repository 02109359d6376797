-- Per order: its value from the price list, what has been paid, what is still owed.
-- An order of a product missing from the price list has a null value and balance.
with orders as (
    select * from {{ ref('stg_orders') }}
),

prices as (
    select * from {{ ref('prices') }}
),

payments as (
    select * from {{ ref('order_payments') }}
),

valued as (
    select
        orders.order_id,
        orders.customer_id,
        orders.order_date,
        orders.quantity * prices.unit_price_cents as order_value_cents,
        coalesce(payments.payment_count, 0) as payment_count,
        coalesce(payments.paid_cents, 0) as paid_cents
    from orders
    left join prices on prices.product_id = orders.product_id
    left join payments on payments.order_id = orders.order_id
)

select
    order_id,
    customer_id,
    order_date,
    order_value_cents,
    payment_count,
    paid_cents,
    order_value_cents - paid_cents as balance_cents
from valued
