-- Every column back, and what SQL makes of each type (so a wrong type changes the answer).
select
    *,
    price * 3 as price_tripled,
    big_decimal + 1 as big_decimal_plus_one,
    huge // 7 as huge_seventh,
    u64 // 3 as u64_third,
    ratio * 2 as ratio_doubled,
    at_time + interval 1 minute as a_minute_later,
    date_part('hour', at_instant) as utc_hour,
    octet_length(payload) as payload_bytes,
    list_sum(counts) as counts_total,
    len(tags) as tag_count,
    detail.amount * 2 as detail_amount_doubled,
    len(items) as item_count
from {{ ref('typed') }}
