select count(*) as n from {{ ref('orders') }}
