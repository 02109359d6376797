{# A typed empty body for an input model: requests bring the rows. #}
{% macro duckapi_no_rows() -%}
  select
  {%- for column in model.columns.values() %}
      cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
  {%- endfor %}
  where false
{%- endmacro %}
