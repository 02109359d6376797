select category_id, upper(category_name) as label from {{ source('warehouse', 'categories') }}
