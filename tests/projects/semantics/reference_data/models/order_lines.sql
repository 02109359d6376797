select
    orders.order_id,
    orders.qty,
    products.name,
    orders.qty * prices.unit_cents as line_cents,
    categories.category_name,
    category_labels.label as category_label,
    coalesce(stock.in_stock, 0) as in_stock,
    current_products.name as snapshot_name
from {{ ref('orders') }} as orders
join {{ ref('products') }} as products on products.product_id = orders.product_id
join {{ ref('prices') }} as prices on prices.product_id = orders.product_id
join {{ source('warehouse', 'categories') }} as categories on categories.category_id = products.category_id
join {{ ref('category_labels') }} as category_labels on category_labels.category_id = products.category_id
left join {{ ref('stock') }} as stock on stock.product_id = orders.product_id
join {{ ref('products_snapshot') }} as current_products
    on current_products.product_id = orders.product_id and current_products.dbt_valid_to is null
