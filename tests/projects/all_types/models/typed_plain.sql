{{ config(materialized='table') }}
-- The types DuckDB's JSON reader keeps exactly (no long decimal, no integer past 64 bits):
-- a large JSON body for these is parsed by DuckDB, not msgspec.
select * exclude (price, big_decimal, huge, u64, detail) from {{ ref('typed') }}
