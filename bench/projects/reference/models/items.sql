{{ config(materialized='table') }}
{%- if var('items_index', false) %}
{{ config(post_hook="create unique index items_item_key on {{ this }} (item_key)") }}
{%- endif %}
-- The reference table: `reference_rows` items (dbt var, default 1M), stored in key order;
-- with the var items_index, a unique ART index on item_key too. Name and price are
-- functions of the key so that plain_lines can produce the same answer shape without
-- reading this table; bench/reference.py checks answers against the rows stored here.
select
    range as item_key,
    'item-' || range as item_name,
    (range * 7919) % 10007 as price_cents
from range({{ var('reference_rows', 1000000) }})
