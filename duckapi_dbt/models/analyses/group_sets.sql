select
    group_id,
    {{ duckapi.sorted_distinct_list('event_value') }} as group_value_set
from {{ ref('group_event_values') }}
group by group_id
