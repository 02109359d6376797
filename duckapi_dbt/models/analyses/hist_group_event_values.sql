-- Same statistic as group_event_value_histogram under the reference's second
-- name: reuse it rather than group the input a second time.
select
    group_id,
    event_value,
    group_event_value_count
from {{ ref('group_event_value_histogram') }}
