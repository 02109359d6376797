-- The request input: no example data, a typed empty relation; every request's rows replace it.
select cast(null as bigint) as line_id, cast(null as bigint) as item_key, cast(null as bigint) as qty
where false
