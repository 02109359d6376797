-- The same answer shape without the join: name and price computed from the key as
-- items.sql defines them. The benchmark's "without the join" endpoint.
select
    l.line_id,
    l.item_key,
    l.qty,
    'item-' || l.item_key as item_name,
    (l.item_key * 7919) % 10007 as price_cents,
    l.qty * ((l.item_key * 7919) % 10007) as amount_cents
from {{ ref('order_lines') }} as l
order by l.line_id
