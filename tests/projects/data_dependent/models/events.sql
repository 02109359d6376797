select group_id, event_value from {{ ref('example_events') }}
