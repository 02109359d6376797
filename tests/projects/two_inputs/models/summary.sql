select
    (select n from {{ ref('order_count') }}) as order_count,
    (select total from {{ ref('paid') }}) as paid
