-- One column per top group (top_groups is rendered from the data too), and their count.
{%- set groups = distinct_values.get_column_values(ref('top_groups'), 'group_id') %}
select
    {%- for group in groups %}
    sum(case when group_id = {{ string_literal(group) }} then total end) as {{ column_name(group) }},
    {%- endfor %}
    count(*) as top_group_count
from {{ ref('top_groups') }}
