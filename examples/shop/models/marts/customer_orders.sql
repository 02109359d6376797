-- Per customer with orders: name and segment from the customer list, how many orders,
-- their value, what has been paid and what is still owed. A customer id missing from
-- the customer list still gets its row, with a null name and segment.
with customers as (
    select * from {{ ref('customers') }}
),

orders as (
    select * from {{ ref('order_totals') }}
),

customer_totals as (
    select
        customer_id,
        count(*) as order_count,
        min(order_date) as first_order_date,
        sum(order_value_cents) as order_value_cents,
        sum(paid_cents) as paid_cents
    from orders
    group by customer_id
)

select
    customer_totals.customer_id,
    customers.name,
    customers.segment,
    customer_totals.order_count,
    customer_totals.first_order_date,
    customer_totals.order_value_cents,
    customer_totals.paid_cents,
    customer_totals.order_value_cents - customer_totals.paid_cents as balance_cents
from customer_totals
left join customers on customers.customer_id = customer_totals.customer_id
