{{ config(materialized='ephemeral') }}
select k, v * 2 as v2 from {{ ref('filtered') }}
