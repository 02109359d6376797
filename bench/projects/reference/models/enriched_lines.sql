-- Each request line with its item looked up in the reference table (null when unknown).
select
    l.line_id,
    l.item_key,
    l.qty,
    i.item_name,
    i.price_cents,
    l.qty * i.price_cents as amount_cents
from {{ ref('order_lines') }} as l
left join {{ ref('items') }} as i on i.item_key = l.item_key
order by l.line_id
