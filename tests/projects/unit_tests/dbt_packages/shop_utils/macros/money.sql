{#- Cents as an exact decimal amount, in each adapter's words. -#}
{% macro cents_to_amount(column) -%}
    {{ return(adapter.dispatch('cents_to_amount', 'shop_utils')(column)) }}
{%- endmacro %}

{% macro default__cents_to_amount(column) -%}
    cast({{ column }} as decimal(18, 2)) / 100
{%- endmacro %}

{#- The first day of the value's month. -#}
{% macro month_of(column) -%}
    {{ return(adapter.dispatch('month_of', 'shop_utils')(column)) }}
{%- endmacro %}

{% macro default__month_of(column) -%}
    cast(date_trunc('month', {{ column }}) as date)
{%- endmacro %}
