-- The same work, one row out per input row (never batched).
select j.n, (select sum(x) from range(j.n) t(x)) as total from {{ ref('jobs') }} j order by j.n
