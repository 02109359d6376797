{#- A column per distinct group_id of the request's rows: rendered by dbt for each new set of groups. -#}
select
{%- for g in distinct_values(ref('group_event_values'), 'group_id') %}
  coalesce(sum(case when group_id = '{{ g | replace("'", "''") }}' then event_value end), 0)
    as "{{ g | replace('"', '""') }}"{{ "," if not loop.last }}
{%- endfor %}
from {{ ref('group_event_values') }}
