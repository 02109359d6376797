-- Inner CTEs `orders` and `customers` shadow nothing: ref('orders') and ref('customers')
-- below are the models of those names (amounts in cents, first orders), not these CTEs.
with orders as (
    select * from {{ ref('stg_orders') }}
),

customers as (
    select customer, count(*) as order_count, sum(amount) as total
    from orders
    group by customer
)

select
    customers.customer,
    customers.order_count,
    customers.total,
    first_orders.first_order_id,
    (select sum(amount) from {{ ref('orders') }}) as all_orders_cents
from customers
join {{ ref('customers') }} as first_orders on first_orders.customer = customers.customer
