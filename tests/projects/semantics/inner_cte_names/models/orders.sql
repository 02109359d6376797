-- A model named like customer_totals' inner CTE, with other content: amounts in cents.
select order_id, customer, amount * 100 as amount from {{ ref('stg_orders') }}
