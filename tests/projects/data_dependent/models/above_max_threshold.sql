-- The events at the largest value: the maximum is rendered into the SQL as a literal.
{%- set largest_query %}
select max(event_value) from {{ ref('events') }}
{%- endset %}
{%- set largest = distinct_values.get_single_value(largest_query) %}
select group_id, event_value, {{ largest if largest is not none else 'null' }}::bigint as largest_value
from {{ ref('events') }}
where {% if largest is none %}false{% else %}event_value = {{ largest }}{% endif %}
