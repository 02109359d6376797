{{ config(materialized='incremental', unique_key='product_id') }}
select product_id, in_stock, updated_day
from (values (10, 4, date '2024-05-01'), (11, 0, date '2024-05-02'), (12, 30, date '2024-05-02'))
    as stock (product_id, in_stock, updated_day)
{% if is_incremental() %}
where updated_day > (select max(updated_day) from {{ this }})
{% endif %}
