{#-
  The project's vars, checked. duckapi lets an API client set any var declared in
  dbt_project.yml per request (?vars={"session_gap_minutes": 10}), so a var's value
  is client input: it is validated here and quoted where it becomes SQL text, never
  pasted. A bad value fails the compile with a message that does not echo it.
-#}

{#- Minutes of inactivity after which a user's next event starts a new session. -#}
{% macro checked_session_gap_minutes() -%}
  {%- set gap = var('session_gap_minutes') -%}
  {%- if gap is not integer or gap < 0 or gap > 1000000 -%}
    {{ exceptions.raise_compiler_error("var session_gap_minutes must be a whole number of minutes from 0 to 1000000") }}
  {%- endif -%}
  {{ return(gap) }}
{%- endmacro %}


{#- The funnel's steps: 1 to 20 distinct, non-empty event names (up to 200 characters), in order. -#}
{% macro checked_funnel_steps() -%}
  {%- set steps = var('funnel_steps') -%}
  {%- set problem = "var funnel_steps must be a list of 1 to 20 distinct event names of 1 to 200 characters" -%}
  {%- if steps is string or steps is mapping or steps is not iterable -%}
    {{ exceptions.raise_compiler_error(problem) }}
  {%- endif -%}
  {%- for step in steps -%}
    {%- if step is not string or step | length == 0 or step | length > 200 -%}
      {{ exceptions.raise_compiler_error(problem) }}
    {%- endif -%}
  {%- endfor -%}
  {%- if steps | length < 1 or steps | length > 20 or steps | unique(case_sensitive=true) | list | length != steps | length -%}
    {{ exceptions.raise_compiler_error(problem) }}
  {%- endif -%}
  {{ return(steps) }}
{%- endmacro %}


{#- A string as a standard SQL literal: quotes doubled, nothing else is special. -#}
{% macro sql_string(value) -%}
  '{{ value | replace("'", "''") }}'
{%- endmacro %}
