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


{#-
  Spark. The default__ macros above are already Spark SQL (collect_list/collect_set,
  array_sort, named_struct, decimal(38, 0) sums, to_json); what Spark adds is its type
  names: it rejects a bare VARCHAR (it wants a length) where DuckDB's `varchar` is the
  project's string type in YAML (contract data_types, seed column_types, a test
  expression). These spark__ overrides of dbt's own dispatched macros translate a bare
  varchar/text to Spark's `string`, so the YAML stays as it is for both engines.
-#}
{% macro spark_type(data_type) -%}
  {{- 'string' if (data_type | string | trim | lower) in ('varchar', 'text', 'bpchar', 'char') else data_type -}}
{%- endmacro %}

{#- The same inside SQL text: `as varchar` (a cast's target type) -> `as string`. -#}
{% macro spark_casts(sql) -%}
  {{- modules.re.sub('(?i)\\b(as\\s+)(varchar|text|bpchar|char)\\b(?!\\s*\\()', '\\1string', sql | string) -}}
{%- endmacro %}

{#- Contract checks (get_empty_schema_sql) and any cast go through dbt.cast. -#}
{% macro spark__cast(field, type) -%}
  cast({{ field }} as {{ duckapi.spark_type(type) }})
{%- endmacro %}

{#- dbt's unique test over an expression such as `cast(event_value as varchar)`. -#}
{% macro spark__test_unique(model, column_name) -%}
  {{ dbt.default__test_unique(model, duckapi.spark_casts(column_name)) }}
{%- endmacro %}

{#- Seeds: dbt-spark's own DDL and inserts, over the seed's column_types translated. -#}
{% macro spark_seed_model(model) -%}
  {%- set types = {} -%}
  {%- for name, type in (model['config'].get('column_types') or {}).items() -%}
    {%- do types.update({name: duckapi.spark_type(type)}) -%}
  {%- endfor -%}
  {%- set config = model['config'].copy() -%}
  {%- do config.update({'column_types': types}) -%}
  {%- set translated = model.copy() -%}
  {%- do translated.update({'config': config}) -%}
  {{- return(translated) -}}
{%- endmacro %}

{% macro spark__create_csv_table(model, agate_table) -%}
  {{ return(dbt.spark__create_csv_table(duckapi.spark_seed_model(model), agate_table)) }}
{%- endmacro %}

{% macro spark__load_csv_rows(model, agate_table) -%}
  {{ return(dbt.spark__load_csv_rows(duckapi.spark_seed_model(model), agate_table)) }}
{%- endmacro %}
