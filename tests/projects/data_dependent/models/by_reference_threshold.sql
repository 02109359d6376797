-- The threshold is read from reference data (a seed, not the request's rows) while
-- rendering: the same SQL for every request.
{%- set threshold_query %}
select threshold_value from {{ ref('thresholds') }} where threshold_name = 'big'
{%- endset %}
{%- set threshold = distinct_values.get_single_value(threshold_query, default=0) %}
select group_id, event_value, event_value >= {{ threshold }} as is_big
from {{ ref('events') }}
