-- One request input joined with a model computed from it, qualified the same way.
select orders.order_id, orders.customer, orders.item_count, order_sizes.size
from {{ ref('orders') }}
join {{ ref('order_sizes') }} on orders.order_id = order_sizes.order_id
