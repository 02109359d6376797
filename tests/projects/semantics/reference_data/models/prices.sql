{{ config(materialized='table') }}
select product_id, unit_cents
from (values (10, 3500), (11, 2200), (12, 650), (13, 120)) as prices (product_id, unit_cents)
