{#- The distinct values of a column of a relation, in ascending order, as a list: what
    dbt_utils.get_column_values returns (ordered by the value here). Empty while dbt
    parses the project (no query runs then). -#}
{% macro get_column_values(relation, column) -%}
    {{ return(adapter.dispatch('get_column_values', 'distinct_values')(relation, column)) }}
{%- endmacro %}

{% macro default__get_column_values(relation, column) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select distinct {{ column }} from {{ relation }} order by {{ column }}
    {%- endset -%}
    {%- set results = run_query(query) -%}
    {{ return(results.columns[0].values() | list) }}
{%- endmacro %}
