{#- The first column of the first row a query returns, or `default` (also while dbt
    parses the project, and when the value is null): dbt_utils.get_single_value. -#}
{% macro get_single_value(query, default=none) -%}
    {{ return(adapter.dispatch('get_single_value', 'distinct_values')(query, default)) }}
{%- endmacro %}

{% macro default__get_single_value(query, default=none) -%}
    {%- if not execute -%}
        {{ return(default) }}
    {%- endif -%}
    {%- set results = run_query(query) -%}
    {%- if results.rows | length == 0 or results.rows[0][0] is none -%}
        {{ return(default) }}
    {%- endif -%}
    {{ return(results.rows[0][0]) }}
{%- endmacro %}
