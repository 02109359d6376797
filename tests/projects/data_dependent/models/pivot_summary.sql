select *, 1 as marker from {{ ref('pivot_mid') }}
