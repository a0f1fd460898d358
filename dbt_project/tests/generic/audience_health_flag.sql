{#- The audiences (on the clock's day, or any day for a drift) where `condition` holds on marts.audience_health:
    each failing row names the destination, the audience and its figures. -#}
{% test audience_health_flag(model, condition) %}
select *
from {{ model }}
where {{ condition }}
{% endtest %}
