{{ config(materialized='ephemeral') }}
-- Does not depend on the input (nor on any relation).
select * from (values ('a', 'Alpha'), ('b', 'Beta'), ('c', 'Gamma')) as labels (k, label)
