select order_id, customer, amount from {{ ref('example_orders') }}
