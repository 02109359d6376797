-- order_totals over the example seeds must be exactly these rows (in any order).
-- Returns the rows that differ, so dbt reports them.
with expected as (
    select * from (values
        (1, 1, date '2024-03-01', 2598, 1, 2598, 0),
        (2, 1, date '2024-03-02', 150, 2, 150, 0),
        (3, 2, date '2024-03-02', 8999, 2, 8999, 0),
        (4, 3, date '2024-03-04', 1350, 0, 0, 1350),
        (5, 2, date '2024-03-05', 1299, 1, 1000, 299),
        (6, 4, date '2024-03-06', 900, 0, 0, 900)
    ) as expected (order_id, customer_id, order_date, order_value_cents, payment_count, paid_cents, balance_cents)
),

actual as (
    select order_id, customer_id, order_date, order_value_cents, payment_count, paid_cents, balance_cents
    from {{ ref('order_totals') }}
)

{{ shop.rows_differ('actual', 'expected') }}
