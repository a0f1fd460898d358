{#- Use the folder's schema name as is ("staging", "marts"), not "<target>_staging": stakeholders query
    stable names, and the sync engine finds sync models in the "syncs" schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
