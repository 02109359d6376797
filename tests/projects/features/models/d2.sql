select r, (select coalesce(sum(v2), 0) from {{ ref('eph') }}) as doubled from {{ ref('shared') }}
