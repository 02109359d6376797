-- Every column of the pivot (its columns are the data's groups), read with star().
select {{ distinct_values.star(ref('group_pivot')) }}, 1 as marker
from {{ ref('group_pivot') }}
