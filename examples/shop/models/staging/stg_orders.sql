-- The orders of a request. duckapi replaces this model by the posted rows; in `dbt build`
-- it reads the example seed, so the project builds and tests on its own.
select
    id as order_id,
    customer_id,
    product_id,
    quantity,
    ordered_on as order_date
from {{ ref('example_orders') }}
