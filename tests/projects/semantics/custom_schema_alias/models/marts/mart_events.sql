{{ config(alias='events') }}
-- Same alias as stg_events, another schema, other content: one row per key.
select k, sum(v) as total, count(*) as n from {{ ref('stg_events') }} group by k
