select
    {{ shop_utils.month_of('ordered_at') }} as month,
    count(*) as orders,
    sum({{ shop_utils.cents_to_amount('amount_cents') }}) as revenue
from {{ ref('stg_orders') }}
where status = 'paid'
group by 1
