select k, count(*) as n, sum(v) as total, min(day) as first_day, max(day) as last_day
from {{ ref('events') }}
group by k
