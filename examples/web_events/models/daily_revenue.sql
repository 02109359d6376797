-- Served at POST /revenue/: one row per calendar day (of ts) that has any event, in
-- day order. Only purchase events count: a purchase without an amount is a purchase
-- that adds nothing to revenue, an amount on any other event is ignored. A day with
-- traffic but no purchase answers 0 purchases, 0.0 revenue, 0 buyers.
select
    cast(ts as date) as day,
    count(case when event_name = 'purchase' then 1 end) as purchases,
    coalesce(sum(case when event_name = 'purchase' then amount end), cast(0 as double)) as revenue,
    count(distinct case when event_name = 'purchase' then user_id end) as buyers
from {{ ref('web_events') }}
group by cast(ts as date)
