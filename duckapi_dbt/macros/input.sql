{#-
  The body of an input model that has no example data: a typed empty relation
  built from the model's contract. duckapi replaces the input model with each
  request's rows anyway; in `dbt build` the project then runs (and tests) over no
  rows. Use it as the whole model:  {{ duckapi.no_rows() }}
-#}
{% macro no_rows() -%}
  select
  {%- for column in model.columns.values() %}
      cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
  {%- endfor %}
  where false
{%- endmacro %}
