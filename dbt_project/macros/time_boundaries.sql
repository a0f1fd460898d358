{#- The time boundaries of the shared models (lifecycle, winback, carts, suppressions, intent): the one
    place that says how long after a moment a person's rows change with no new data (a window opens or
    closes, a stage is reached). Those models read each boundary through time_boundary(); int_scope_keys
    puts everyone in scope whose boundary the clock passed since the previous run, so a scoped run sees it.
    A window of one segment model belongs in its own meta.segment.window instead (scope_time_boundaries).
      anchor  the moment it counts from: 'order' (an order placed: first, last or a code redemption),
              'checkout' (a checkout started), 'event' (a Segment event happened: its occurred_at) or
              'stored' (a moment a model computed from the person's data, e.g. a due date: `column` names
              it as '<model>.<column>', a column of that model keyed by customer_key, which int_scope_keys
              reads from the previous run's table); a new anchor fails the build until int_scope_keys knows it;
      unit / amount  the dbt.dateadd interval after it (the lengths are vars in dbt_project.yml). -#}
{% macro time_boundaries() %}
    {{ return({
        'lifecycle_new_until': {'anchor': 'order', 'unit': 'day', 'amount': var('lifecycle_new_days')},
        'lifecycle_at_risk_from': {'anchor': 'order', 'unit': 'day', 'amount': var('lifecycle_at_risk_after_days')},
        'lifecycle_lapsed_from': {'anchor': 'order', 'unit': 'day', 'amount': var('lifecycle_lapsed_after_days')},
        'lifecycle_churned_from': {'anchor': 'order', 'unit': 'day', 'amount': var('lifecycle_churned_after_days')},
        'promo_window_end': {'anchor': 'order', 'unit': 'day', 'amount': var('promo_window_days')},
        'recent_purchase_suppression_end': {'anchor': 'order', 'unit': 'day', 'amount': var('suppress_recent_purchase_days')},
        'winback_window_start': {'anchor': 'order', 'unit': 'day', 'amount': var('winback_window_days')},
        'winback_offer_end': {'anchor': 'order', 'unit': 'day',
                              'amount': var('winback_window_days') + var('winback_offer_days')},
        'winback_recent_redeemer_end': {'anchor': 'order', 'unit': 'day', 'amount': var('winback_recent_redeemer_days')},
        'cart_grace_end': {'anchor': 'checkout', 'unit': 'minute', 'amount': var('cart_grace_minutes')},
        'cart_short_window_end': {'anchor': 'checkout', 'unit': 'hour', 'amount': var('cart_short_window_hours')},
        'cart_long_window_end': {'anchor': 'checkout', 'unit': 'hour', 'amount': var('cart_long_window_hours')},
        'intent_window_end': {'anchor': 'event', 'unit': 'day', 'amount': var('intent_window_days')},
        'affinity_event_window_end': {'anchor': 'event', 'unit': 'day', 'amount': var('affinity_window_days')},
        'affinity_order_window_end': {'anchor': 'order', 'unit': 'day', 'amount': var('affinity_window_days')},
        'replenishment_due_from': {'anchor': 'stored', 'column': 'customer_lifecycle.replenishment_due_at',
                                   'unit': 'day', 'amount': 0},
        'replenishment_due_until': {'anchor': 'stored', 'column': 'customer_lifecycle.replenishment_due_at',
                                    'unit': 'day', 'amount': var('replenishment_grace_days')},
    }) }}
{% endmacro %}


{#- A boundary as SQL: the moment `anchor_expression` plus the boundary's interval. -#}
{% macro time_boundary(name, anchor_expression) -%}
    {%- set boundaries = time_boundaries() -%}
    {%- if name not in boundaries -%}
        {{ exceptions.raise_compiler_error("no time boundary '" ~ name ~ "' in macros/time_boundaries.sql") }}
    {%- endif -%}
    {%- set boundary = boundaries[name] -%}
    {{ return(dbt.dateadd(boundary.unit, boundary.amount, anchor_expression) | trim) }}
{%- endmacro %}


{#- Every boundary a scoped run must watch: the declaration above, and the windows the frequent segment
    models declare in meta.segment.window (macros/segments/segments.sql), named segment:<model>:<n>. -#}
{% macro scope_time_boundaries() %}
    {%- set boundaries = {} -%}
    {%- do boundaries.update(time_boundaries()) -%}
    {%- for segment in relay_segments() if segment.schedule == 'frequent' -%}
        {%- for moment in segment.window -%}
            {%- do boundaries.update({'segment:' ~ segment.name ~ ':' ~ loop.index: moment}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(boundaries) }}
{% endmacro %}
