{#-
  The rows that differ between two relations with the same columns, counting
  duplicates: each row of `expected` missing from `actual` ('missing'), and each
  row of `actual` not in `expected` ('unexpected'). Empty when they are equal.
  Portable (EXCEPT ALL exists in DuckDB and Spark SQL).
-#}
{% macro rows_differ(actual, expected) -%}
select 'missing' as problem, missing.*
from (select * from {{ expected }} except all select * from {{ actual }}) as missing
union all
select 'unexpected' as problem, unexpected.*
from (select * from {{ actual }} except all select * from {{ expected }}) as unexpected
{%- endmacro %}
