-- Every column of the input, read with star(): its columns never depend on the data.
select {{ distinct_values.star(ref('events')) }}
from {{ ref('events') }}
