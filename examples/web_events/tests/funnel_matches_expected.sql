-- The funnel over the example seed: 6 users viewed; bob added to cart only before
-- viewing, so 4 reached add_to_cart (erin's view and add_to_cart share an instant,
-- which counts as in order); dave never purchased, so 3 reached purchase (carol's
-- purchase has no amount and still counts).
with expected as (
    select * from (
        values
            (1, 'view', 6),
            (2, 'add_to_cart', 4),
            (3, 'purchase', 3)
    ) as t (step_number, step, users)
),

actual as (
    select step_number, step, users
    from {{ ref('funnel') }}
)

select 'missing' as problem, * from (select * from expected except select * from actual) as m
union all
select 'unexpected' as problem, * from (select * from actual except select * from expected) as u
