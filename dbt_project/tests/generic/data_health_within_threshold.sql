{#- Warns (configure severity in the YAML) when the newest data_health measurement of `check` has a reason
    whose share of rows exceeds its threshold (var relay_data_health_max_share); each offending row is a
    failure naming subject, reason, counts and share. -#}
{% test data_health_within_threshold(model, check) %}
select check_name, subject, reason, affected_rows, examined_rows, share, max_share
from {{ model }}
where measured_at = (select max(measured_at) from {{ model }})
    and check_name = '{{ check }}'
    and status = 'warn'
{% endtest %}
