select
    count(*) as orders,
    {{ shop_utils.cents_to_amount('sum(amount_cents)') }} as revenue,
    '{{ env_var("SHOP_REGION", "eu") }}' as region,
    {{ dbt.current_timestamp() }} as computed_at
from {{ ref('paid_orders') }}
