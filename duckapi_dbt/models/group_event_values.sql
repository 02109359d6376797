-- The request input. duckapi replaces this model with each request's rows; in
-- `dbt build` it reads the example seed so the project runs and tests on its own.
select
    group_id,
    event_value
from {{ ref('example_data') }}
