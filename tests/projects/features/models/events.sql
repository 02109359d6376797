-- No seed: a typed empty relation; every request's rows replace it.
select cast(null as varchar) as k, cast(null as bigint) as v where false
