-- Per group, how many of its events have each value seen: one column per distinct value.
{%- set seen = distinct_values.get_column_values(ref('events'), 'event_value') %}
select
    group_id,
    {%- for value in seen %}
    count(case when event_value = {{ value }} then 1 end) as value_{{ value }},
    {%- endfor %}
    sum(event_value) as total
from {{ ref('events') }}
group by group_id
