{#- Whether an event may go to a marketing destination: order facts always (they end journeys), every
    other event (a marketing trigger) only for a person who has not unsubscribed from email marketing. -#}
{% macro event_marketing_allowed(event_name, email_marketing_consent) -%}
    ({{ event_name }} in ('Order Completed', 'Order Refunded')
        or coalesce({{ email_marketing_consent }}, 'not_subscribed') <> 'unsubscribed')
{%- endmacro %}
