{{ config(materialized='ephemeral') }}
select order_id, customer_id, ordered_at, amount_cents
from {{ ref('stg_orders') }}
where status = 'paid'
