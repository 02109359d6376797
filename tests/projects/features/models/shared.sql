{{ config(materialized='table') }}
-- random() tells evaluations apart: computed once, all three dependents see one value.
select random() as r, count(*) as n, coalesce(sum(v), 0) as total from {{ ref('filtered') }}
