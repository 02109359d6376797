-- `items` (no alias) is the relation's whole row, a struct.
select items, items.qty * 2 as double_qty
from {{ ref('items') }}
