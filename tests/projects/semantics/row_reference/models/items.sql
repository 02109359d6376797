-- The request input; in dbt build it reads the example seed.
select item_id, label, qty from {{ ref('example_items') }}
