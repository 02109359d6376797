select cast(null as bigint) as order_id where false  -- requests bring the rows
