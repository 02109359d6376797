-- One column per group, its events' total: the groups are the data's distinct values.
{%- set groups = distinct_values.get_column_values(ref('events'), 'group_id') %}
select
    {%- for group in groups %}
    coalesce(sum(case when group_id = {{ string_literal(group) }} then event_value end), 0) as {{ column_name(group) }}
    {{- "," if not loop.last }}
    {%- endfor %}
from {{ ref('events') }}
