-- An inner CTE named like the input model it reads.
with stg_orders as (
    select * from {{ ref('stg_orders') }} where amount >= 10
)

select count(*) as big_orders, sum(amount) as big_amount from stg_orders
