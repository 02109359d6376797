-- Each row asks for work on range(n).
select cast(null as bigint) as n where false
