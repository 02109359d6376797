{{ config(materialized='ephemeral') }}
-- Depends on the input through another ephemeral model.
select k, v * 2 as v2 from {{ ref('positive_events') }}
