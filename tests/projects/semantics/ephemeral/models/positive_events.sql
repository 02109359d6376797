{{ config(materialized='ephemeral') }}
-- Depends on the input.
select k, v from {{ ref('events') }} where v > 0
