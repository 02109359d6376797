select doubled.k, labels.label, count(*) as n, sum(doubled.v2) as total
from {{ ref('doubled') }} as doubled
left join {{ ref('labels') }} as labels on labels.k = doubled.k
group by doubled.k, labels.label
