select
    customer_id,
    sum(amount_cents) as total_cents,
    sum(amount_cents) >= {{ var('vip_cents') }} as is_vip
from {{ ref('stg_orders') }}
where status = 'paid'
group by customer_id
