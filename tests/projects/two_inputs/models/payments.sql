select cast(null as bigint) as order_id, cast(null as bigint) as amount where false  -- requests bring the rows
