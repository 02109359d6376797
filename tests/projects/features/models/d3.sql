select r, total from {{ ref('shared') }}
