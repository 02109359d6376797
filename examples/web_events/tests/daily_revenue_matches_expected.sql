-- daily_revenue over the example seed. 2026-01-05: alice 30.00 + bob 12.50 + carol's
-- purchase without an amount; 2026-01-06: erin 19.99 (dave's midnight-crossing session
-- puts his events on two days); 2026-01-07: erin 5.01, frank's 15.00 is a cart, not
-- revenue; 2026-01-04: a view only. Revenue is compared to a cent's millionth, the
-- rest exactly.
with expected as (
    select * from (
        values
            (date '2026-01-04', 0, 0.0, 0),
            (date '2026-01-05', 3, 42.5, 3),
            (date '2026-01-06', 1, 19.99, 1),
            (date '2026-01-07', 1, 5.01, 1)
    ) as t (day, purchases, revenue, buyers)
)

select
    coalesce(e.day, a.day) as day,
    a.purchases, e.purchases as expected_purchases,
    a.revenue, e.revenue as expected_revenue,
    a.buyers, e.buyers as expected_buyers
from {{ ref('daily_revenue') }} as a
full outer join expected as e
    on a.day = e.day
where a.day is null
    or e.day is null
    or a.purchases <> e.purchases
    or a.buyers <> e.buyers
    or abs(a.revenue - e.revenue) > 1e-8
