select r, n from {{ ref('shared') }}
