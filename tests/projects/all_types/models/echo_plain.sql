select
    *,
    at_time + interval 1 minute as a_minute_later,
    date_part('hour', at_instant) as utc_hour,
    octet_length(payload) as payload_bytes,
    list_sum(counts) as counts_total,
    len(tags) as tag_count,
    len(items) as item_count
from {{ ref('typed_plain') }}
