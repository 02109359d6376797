-- Fails as soon as it sees a row: proof that a pruned part is not executed.
select case when v is not null then error('boom: model boom ran') end as x from {{ ref('filtered') }}
