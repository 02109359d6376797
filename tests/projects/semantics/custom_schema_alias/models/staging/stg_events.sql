{{ config(alias='events') }}
select event_id, k, v from {{ ref('example_events') }}
