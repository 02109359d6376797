select payment_id, order_id, amount from {{ ref('example_payments') }}
