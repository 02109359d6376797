{{ config(materialized='incremental', unique_key='order_id') }}
select order_id, ordered_at, amount_cents
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where ordered_at > (select max(ordered_at) from {{ this }})
{% endif %}
