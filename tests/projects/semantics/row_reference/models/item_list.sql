-- The whole relation as one list of its rows, through a model downstream of the input.
select list(big_items order by big_items.item_id) as big_items, count(*) as n
from {{ ref('big_items') }}
