-- The groups whose total is at least a share of the average total, the average rendered as a literal.
{%- set average_query %}
select avg(total) from (select sum(event_value) as total from {{ ref('events') }} group by group_id) as totals
{%- endset %}
{%- set average = distinct_values.get_single_value(average_query) %}
select group_id, sum(event_value) as total
from {{ ref('events') }}
group by group_id
having {% if average is none %}false{% else %}sum(event_value) >= {{ average }} * {{ var('average_share') }}{% endif %}
