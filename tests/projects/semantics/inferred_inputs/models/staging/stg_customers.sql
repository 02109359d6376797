select id as customer_id, full_name as name from {{ source('raw', 'customers') }}
