-- customer_orders over the example seeds must be exactly these rows (in any order):
-- Alan Turing and Edsger Dijkstra have paid nothing, Barbara Liskov ordered nothing.
-- Returns the rows that differ, so dbt reports them.
with expected as (
    select * from (values
        (1, 'Ada Lovelace', 'retail', 2, date '2024-03-01', 2748, 2748, 0),
        (2, 'Grace Hopper', 'business', 2, date '2024-03-02', 10298, 9999, 299),
        (3, 'Alan Turing', 'retail', 1, date '2024-03-04', 1350, 0, 1350),
        (4, 'Edsger Dijkstra', 'business', 1, date '2024-03-06', 900, 0, 900)
    ) as expected (
        customer_id, name, segment, order_count, first_order_date, order_value_cents, paid_cents, balance_cents
    )
),

actual as (
    select customer_id, name, segment, order_count, first_order_date, order_value_cents, paid_cents, balance_cents
    from {{ ref('customer_orders') }}
)

{{ shop.rows_differ('actual', 'expected') }}
