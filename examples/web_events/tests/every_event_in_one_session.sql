-- Properties that hold for any input, checked here over the seed: user_sessions
-- accounts for every input event once, and no user has more sessions than events.
with totals as (
    select
        (select count(*) from {{ ref('web_events') }}) as input_events,
        (select coalesce(sum(events), 0) from {{ ref('user_sessions') }}) as session_events
)

select 'events lost or doubled' as problem, input_events, session_events
from totals
where input_events <> session_events
union all
select 'more sessions than events: ' || user_id, sessions, events
from {{ ref('user_sessions') }}
where sessions > events or sessions < 1
