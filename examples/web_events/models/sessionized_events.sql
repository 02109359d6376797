-- Every event with its user's session number. A session starts at a user's first
-- event and at every event more than `session_gap_minutes` after the user's previous
-- one; events at the same instant are never apart.
with gaps as (
    select
        user_id,
        event_name,
        ts,
        amount,
        lag(ts) over (partition by user_id order by ts) as previous_ts
    from {{ ref('web_events') }}
),

starts as (
    select
        *,
        case
            when previous_ts is null then 1
            when ts > {{ dbt.dateadd('minute', checked_session_gap_minutes(), 'previous_ts') }} then 1
            else 0
        end as is_session_start
    from gaps
)

select
    user_id,
    event_name,
    ts,
    amount,
    previous_ts,
    is_session_start,
    -- A range frame counts every start up to and including this instant, so events
    -- that share a timestamp always get the same session number.
    sum(is_session_start) over (
        partition by user_id
        order by ts
        range between unbounded preceding and current row
    ) as session_number
from starts
