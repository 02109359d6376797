-- Served at POST /funnel/: how many distinct users reached each step of the funnel
-- in order. A user reaches step k when, after reaching step k-1, they have an event
-- of step k at the same instant or later; the earliest such event is when they
-- reached it (taking the earliest is what makes every later step reachable if any
-- order works). Always one row per step, users 0 when nobody got there.
{%- set steps = checked_funnel_steps() %}

with
{% for step in steps %}
reached_{{ loop.index }} as (
    select
        e.user_id,
        min(e.ts) as reached_at
    from {{ ref('web_events') }} as e
    {%- if not loop.first %}
    inner join reached_{{ loop.index - 1 }} as previous
        on e.user_id = previous.user_id
        and e.ts >= previous.reached_at
    {%- endif %}
    where e.event_name = {{ sql_string(step) }}
    group by e.user_id
),
{% endfor %}

counts as (
    {%- for step in steps %}
    select
        {{ loop.index }} as step_number,
        {{ sql_string(step) }} as step,
        (select count(*) from reached_{{ loop.index }}) as users
    {{ "union all" if not loop.last }}
    {%- endfor %}
)

select
    step_number,
    step,
    users
from counts
