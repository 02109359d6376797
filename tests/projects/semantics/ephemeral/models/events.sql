select k, v from {{ ref('example_events') }}
