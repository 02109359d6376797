-- The request input. duckapi replaces this model with each request's rows (its YAML
-- contract is the API's input schema); in `dbt build` it reads the example seed so
-- the project runs and tests on its own.
select
    user_id,
    event_name,
    ts,
    amount
from {{ ref('example_events') }}
