select orders.order_id, case when orders.item_count >= 3 then 'large' else 'small' end as size
from {{ ref('orders') }}
