-- One column pair per kind of the `kinds` var, and one per statistic of a literal list.
{%- set statistics = {'low': 'min', 'high': 'max'} %}
select
    sensor,
    {%- for kind in var('kinds') %}
    count(case when kind = '{{ kind }}' then 1 end) as {{ kind }}_count,
    coalesce(sum(case when kind = '{{ kind }}' then reading end), 0) as {{ kind }}_total,
    {%- endfor %}
    {%- for name, fn in statistics.items() %}
    {{ fn }}(reading) as {{ name }}_reading{{ "," if not loop.last }}
    {%- endfor %}
from {{ ref('measurements') }}
group by sensor
