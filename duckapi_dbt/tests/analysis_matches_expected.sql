-- The analysis of the example seed must equal the committed answer exactly,
-- list order included (the original's version of this test failed on order).
-- Returns the actual answer when it differs, so dbt reports it.
{% set expected -%}
{"group_sums":[{"group_id":"🐇","value_sum":32},{"group_id":"🐰","value_sum":12},{"group_id":"🦆","value_sum":33}],"group_sets":[{"group_id":"🐇","group_value_set":[1,8,23]},{"group_id":"🐰","group_value_set":[2,5]},{"group_id":"🦆","group_value_set":[3,13,17]}],"group_event_value_histogram":[{"group_id":"🐇","event_value":1,"group_event_value_count":1},{"group_id":"🐇","event_value":8,"group_event_value_count":1},{"group_id":"🐇","event_value":23,"group_event_value_count":1},{"group_id":"🐰","event_value":2,"group_event_value_count":1},{"group_id":"🐰","event_value":5,"group_event_value_count":2},{"group_id":"🦆","event_value":3,"group_event_value_count":1},{"group_id":"🦆","event_value":13,"group_event_value_count":1},{"group_id":"🦆","event_value":17,"group_event_value_count":1}],"group_histogram":[{"group_id":"🐇","group_count":3},{"group_id":"🐰","group_count":3},{"group_id":"🦆","group_count":3}],"hist_event_values":[{"event_value":1,"event_value_count":1},{"event_value":2,"event_value_count":1},{"event_value":3,"event_value_count":1},{"event_value":5,"event_value_count":2},{"event_value":8,"event_value_count":1},{"event_value":13,"event_value_count":1},{"event_value":17,"event_value_count":1},{"event_value":23,"event_value_count":1}],"hist_group_event_values":[{"group_id":"🐇","event_value":1,"group_event_value_count":1},{"group_id":"🐇","event_value":8,"group_event_value_count":1},{"group_id":"🐇","event_value":23,"group_event_value_count":1},{"group_id":"🐰","event_value":2,"group_event_value_count":1},{"group_id":"🐰","event_value":5,"group_event_value_count":2},{"group_id":"🦆","event_value":3,"group_event_value_count":1},{"group_id":"🦆","event_value":13,"group_event_value_count":1},{"group_id":"🦆","event_value":17,"group_event_value_count":1}],"hist_groups":[{"group_id":"🐇","group_count":3},{"group_id":"🐰","group_count":3},{"group_id":"🦆","group_count":3}]}
{%- endset %}

select answer
from (
    select {{ duckapi.row_as_json('a') }} as answer
    from {{ ref('analysis') }} as a
) as actual
where answer <> '{{ expected }}'
