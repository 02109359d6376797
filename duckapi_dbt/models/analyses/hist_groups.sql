-- Same statistic as group_histogram under the reference's second name.
select
    group_id,
    group_count
from {{ ref('group_histogram') }}
