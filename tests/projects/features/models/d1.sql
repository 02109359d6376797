-- The label var lands in SQL text as the project wrote it: a hostile value can break
-- this request's SQL, never reach a file (pipelines run without external access).
select r, n, '{{ var("label") }}' as label from {{ ref('shared') }}
