{#- A relation's columns, quoted and comma-separated, as the database describes them:
    what dbt_utils.star returns (no except list). `*` while dbt parses the project. -#}
{% macro star(relation) -%}
    {%- if not execute -%}
        {{ return('*') }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(relation) -%}
    {%- for column in columns %}{{ adapter.quote(column.name) }}{{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}
