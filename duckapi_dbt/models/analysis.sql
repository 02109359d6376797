-- The API's answer: one row, one column per analysis, each a list of structs
-- sorted by its leading fields (group_id, then event_value, ascending).
select
    {{ duckapi.list_of_structs(ref('group_sums'), ['group_id', 'value_sum']) }} as group_sums,
    {{ duckapi.list_of_structs(ref('group_sets'), ['group_id', 'group_value_set']) }} as group_sets,
    {{ duckapi.list_of_structs(ref('group_event_value_histogram'), ['group_id', 'event_value', 'group_event_value_count']) }} as group_event_value_histogram,
    {{ duckapi.list_of_structs(ref('group_histogram'), ['group_id', 'group_count']) }} as group_histogram,
    {{ duckapi.list_of_structs(ref('hist_event_values'), ['event_value', 'event_value_count']) }} as hist_event_values,
    {{ duckapi.list_of_structs(ref('hist_group_event_values'), ['group_id', 'event_value', 'group_event_value_count']) }} as hist_group_event_values,
    {{ duckapi.list_of_structs(ref('hist_groups'), ['group_id', 'group_count']) }} as hist_groups
