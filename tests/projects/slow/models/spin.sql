-- CPU only: the sum of range(n) per row, one row out (batchable).
select (select sum(x) from {{ ref('jobs') }} j, range(j.n) t(x)) as total
