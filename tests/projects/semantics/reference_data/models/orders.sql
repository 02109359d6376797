select order_id, product_id, qty from {{ ref('example_orders') }}
