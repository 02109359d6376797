-- Served at POST /sessions/: one row per user, in user_id order.
select
    user_id,
    count(distinct session_number) as sessions,
    count(*) as events,
    min(ts) as first_seen,
    max(ts) as last_seen
from {{ ref('sessionized_events') }}
group by user_id
