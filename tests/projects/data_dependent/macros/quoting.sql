{#- A value as a SQL string literal, and as a quoted column name. -#}
{% macro string_literal(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{% macro column_name(value) -%}
    "{{ value | replace('"', '""') }}"
{%- endmacro %}
