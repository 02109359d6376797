{#-
  Engine-specific SQL, behind adapter.dispatch. The models themselves are portable
  SQL; what Spark needs is its type names: it rejects a bare VARCHAR (it wants a
  length), and `varchar` is the project's string type in YAML (contract data_types,
  seed column_types), as DuckDB and duckapi spell it. These spark__ overrides of dbt's
  own dispatched macros translate a bare varchar/text to Spark's `string`, so the YAML
  is the same for both engines.
-#}
{% macro spark_type(data_type) -%}
  {{- 'string' if (data_type | string | trim | lower) in ('varchar', 'text', 'bpchar', 'char') else data_type -}}
{%- endmacro %}

{#- Contract checks (get_empty_schema_sql) and any cast go through dbt.cast. -#}
{% macro spark__cast(field, type) -%}
  cast({{ field }} as {{ shop.spark_type(type) }})
{%- endmacro %}

{#- Seeds: dbt-spark's own DDL and inserts, over the seed's column_types translated. -#}
{% macro spark_seed_model(model) -%}
  {%- set types = {} -%}
  {%- for name, type in (model['config'].get('column_types') or {}).items() -%}
    {%- do types.update({name: shop.spark_type(type)}) -%}
  {%- endfor -%}
  {%- set config = model['config'].copy() -%}
  {%- do config.update({'column_types': types}) -%}
  {%- set translated = model.copy() -%}
  {%- do translated.update({'config': config}) -%}
  {{- return(translated) -}}
{%- endmacro %}

{% macro spark__create_csv_table(model, agate_table) -%}
  {{ return(dbt.spark__create_csv_table(shop.spark_seed_model(model), agate_table)) }}
{%- endmacro %}

{% macro spark__load_csv_rows(model, agate_table) -%}
  {{ return(dbt.spark__load_csv_rows(shop.spark_seed_model(model), agate_table)) }}
{%- endmacro %}
