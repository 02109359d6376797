{% macro distinct_values(relation, column) -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {%- set query -%}select distinct {{ adapter.quote(column) }} from {{ relation }} order by 1{%- endset -%}
  {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}
