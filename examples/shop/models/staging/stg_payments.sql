-- The payments of a request (several per order, or none). duckapi replaces this model by
-- the posted rows; in `dbt build` it reads the example seed.
select
    id as payment_id,
    order_id,
    method as payment_method,
    amount_cents
from {{ ref('example_payments') }}
