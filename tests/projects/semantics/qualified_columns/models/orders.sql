select order_id, customer, item_count from {{ ref('example_orders') }}
