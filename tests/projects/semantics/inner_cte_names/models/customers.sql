-- Also named like an inner CTE of customer_totals: each customer's first order.
select customer, min(order_id) as first_order_id from {{ ref('stg_orders') }} group by customer
