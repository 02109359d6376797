select k, v from {{ ref('events') }} where v >= {{ var('min_v') }}
