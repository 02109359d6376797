{#- A value as a SQL string literal, and as a quoted column name, in the adapter's dialect
    (DuckDB doubles a quote; Spark escapes with a backslash and quotes names with backticks). -#}
{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal')(value)) }}
{%- endmacro %}

{% macro default__string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__string_literal(value) -%}
    '{{ value | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro column_name(value) -%}
    {{ return(adapter.dispatch('column_name')(value)) }}
{%- endmacro %}

{% macro default__column_name(value) -%}
    "{{ value | replace('"', '""') }}"
{%- endmacro %}

{% macro spark__column_name(value) -%}
    `{{ value | replace('`', '``') }}`
{%- endmacro %}
