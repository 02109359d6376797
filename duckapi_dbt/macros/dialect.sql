{#-
  Every piece of engine-specific SQL lives here, behind adapter.dispatch, so the
  models are written once. A new engine adds `<adapter>__<macro>` implementations;
  `default__` is the portable (ANSI/Spark-flavoured) fallback.
-#}

{#- Sum of integers that cannot overflow 64 bits: a group may sum past 2^63. -#}
{% macro exact_sum(expr) -%}
  {{ return(adapter.dispatch('exact_sum', 'duckapi')(expr)) }}
{%- endmacro %}

{% macro duckdb__exact_sum(expr) -%}
  sum({{ expr }})::hugeint
{%- endmacro %}

{% macro default__exact_sum(expr) -%}
  sum(cast({{ expr }} as decimal(38, 0)))
{%- endmacro %}


{#- The distinct values of an expression within a group, ascending. -#}
{% macro sorted_distinct_list(expr) -%}
  {{ return(adapter.dispatch('sorted_distinct_list', 'duckapi')(expr)) }}
{%- endmacro %}

{% macro duckdb__sorted_distinct_list(expr) -%}
  list_sort(list(distinct {{ expr }}))
{%- endmacro %}

{% macro default__sorted_distinct_list(expr) -%}
  array_sort(collect_set({{ expr }}))
{%- endmacro %}


{#-
  All rows of `relation` as one list of structs with the given fields, sorted by
  the fields in the order given (so the leading fields are the sort key). An
  empty relation gives an empty list, never null, so every answer has one shape.
-#}
{% macro list_of_structs(relation, fields) -%}
  {{ return(adapter.dispatch('list_of_structs', 'duckapi')(relation, fields)) }}
{%- endmacro %}

{% macro duckdb__list_of_structs(relation, fields) -%}
  {#- list_sort orders structs field by field, which is the documented order; it is
      cheaper than an ordered aggregate (list(... order by ...)) on small inputs. -#}
  (select coalesce(
      list_sort(list({ {%- for f in fields %}'{{ f }}': {{ f }}{{ ", " if not loop.last }}{% endfor -%} })),
      [])
   from {{ relation }})
{%- endmacro %}

{% macro default__list_of_structs(relation, fields) -%}
  (select array_sort(collect_list(named_struct(
      {%- for f in fields %}'{{ f }}', {{ f }}{{ ", " if not loop.last }}{% endfor -%}
   )))
   from {{ relation }})
{%- endmacro %}


{#- One row of a relation (given by its alias) as minified JSON text. -#}
{% macro row_as_json(alias) -%}
  {{ return(adapter.dispatch('row_as_json', 'duckapi')(alias)) }}
{%- endmacro %}

{% macro duckdb__row_as_json(alias) -%}
  to_json({{ alias }})::varchar
{%- endmacro %}

{% macro default__row_as_json(alias) -%}
  to_json(struct({{ alias }}.*))
{%- endmacro %}
