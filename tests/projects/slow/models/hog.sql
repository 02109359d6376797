-- Memory: every number of range(n) in one string.
select (select length(string_agg(x::varchar, ',')) from {{ ref('jobs') }} j, range(j.n) t(x)) as chars
