{#- What pivot.sql renders for the benchmark's four groups, as a plain model. -#}
select
  coalesce(sum(case when group_id = 'alpha' then event_value end), 0)
    as "alpha",
  coalesce(sum(case when group_id = 'beta' then event_value end), 0)
    as "beta",
  coalesce(sum(case when group_id = 'delta' then event_value end), 0)
    as "delta",
  coalesce(sum(case when group_id = 'gamma' then event_value end), 0)
    as "gamma"
from {{ ref('group_event_values') }}
