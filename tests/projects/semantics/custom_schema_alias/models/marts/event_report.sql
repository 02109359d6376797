{{ config(alias='report') }}
select
    staged.event_id,
    staged.k,
    staged.v,
    per_key.total as key_total,
    per_key.n as key_events
from {{ ref('stg_events') }} as staged
join {{ ref('mart_events') }} as per_key on per_key.k = staged.k
join {{ ref('stg_event_keys') }} as event_keys on event_keys.k = staged.k
