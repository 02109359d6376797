{{ config(alias='event_keys', materialized='table') }}
select distinct k from {{ ref('stg_events') }}
