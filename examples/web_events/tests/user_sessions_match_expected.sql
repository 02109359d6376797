-- user_sessions over the example seed equals the answer worked out by hand (see
-- seeds/schema.yml for the edge cases). Returns every differing row.
with expected as (
    select * from (
        values
            ('alice', 2, 5, timestamp '2026-01-05 09:00:00', timestamp '2026-01-06 18:00:00'),
            ('bob',   1, 3, timestamp '2026-01-05 10:00:00', timestamp '2026-01-05 10:10:00'),
            ('carol', 2, 4, timestamp '2026-01-05 08:00:00', timestamp '2026-01-05 09:05:00'),
            ('dave',  2, 3, timestamp '2026-01-05 23:50:00', timestamp '2026-01-06 01:00:00'),
            ('erin',  2, 4, timestamp '2026-01-06 12:00:00', timestamp '2026-01-07 08:00:00'),
            ('frank', 1, 2, timestamp '2026-01-07 07:00:00', timestamp '2026-01-07 07:10:00'),
            ('gina',  1, 1, timestamp '2026-01-04 22:00:00', timestamp '2026-01-04 22:00:00')
    ) as t (user_id, sessions, events, first_seen, last_seen)
),

actual as (
    select user_id, sessions, events, first_seen, last_seen
    from {{ ref('user_sessions') }}
)

select 'missing' as problem, * from (select * from expected except select * from actual) as m
union all
select 'unexpected' as problem, * from (select * from actual except select * from expected) as u
