{#- Segments are dbt models: any model whose YAML has a `meta.segment` block (by convention in
    models/segments/, one SQL file each). This macro reads them from the graph, checks each block and
    returns them in name order, so the catalog (segment_definitions), the memberships (segment_memberships)
    and the frequent path's scope (int_scope_keys) follow a new segment with no other edit.
      category      promotional (may carry an offer: never contains a suppressed or held-out person,
                    whatever the model selects), classification, guardrail or suppression;
      destinations  each destination's name for it (customerio: segment, cordial: list, talon_one: audience;
                    leave one out = not sent there). Names are stable: renaming creates a new audience;
      schedule      frequent (default: recomputed on every run) or daily (a scoped run keeps yesterday's rows);
      window        the moments after which membership can change with no new data, as
                    [{anchor: order|checkout|event, after: '<n> minutes|hours|days'}]: the frequent path
                    recomputes the people whose moment the clock passed. A model column member_until is a
                    moment too (no need to declare it);
      ttl           the longest anyone should stay a member ('<n> hours|days'): longer open spells warn.
    Empty at parse time (the graph is not built yet): callers use it inside `if execute`. -#}
{% macro relay_segments() %}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set segments = [] -%}
    {%- for node in graph.nodes.values() | sort(attribute='name') -%}
        {%- set meta = node.config.meta or {} -%}
        {%- if node.resource_type == 'model' and 'segment' in meta -%}
            {%- do segments.append(_relay_segment(node, meta.segment)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(segments) }}
{% endmacro %}


{#- Destination -> the catalog column holding its name for a segment. -#}
{% macro segment_destinations() %}
    {{ return({'customerio': 'customerio_segment', 'cordial': 'cordial_list', 'talon_one': 'talon_one_audience'}) }}
{% endmacro %}


{% macro _relay_segment(node, declared) %}
    {%- set where = 'segment model ' ~ node.name ~ ' (' ~ node.original_file_path ~ '): meta.segment' -%}
    {%- if declared is not mapping -%}
        {{ exceptions.raise_compiler_error(where ~ ' must be a mapping') }}
    {%- endif -%}
    {%- set known = ['category', 'destinations', 'schedule', 'window', 'ttl'] -%}
    {%- for key in declared if key not in known -%}
        {{ exceptions.raise_compiler_error(where ~ '.' ~ key ~ ' is not a setting; expected ' ~ known | join(', ')) }}
    {%- endfor -%}
    {%- set categories = ['promotional', 'classification', 'guardrail', 'suppression'] -%}
    {%- if declared.category not in categories -%}
        {{ exceptions.raise_compiler_error(where ~ '.category is ' ~ (declared.category | tojson) ~ '; expected one of ' ~ categories | join(', ')) }}
    {%- endif -%}
    {%- set destinations = declared.destinations or {} -%}
    {%- if destinations is not mapping -%}
        {{ exceptions.raise_compiler_error(where ~ '.destinations must map a destination to its name for the segment') }}
    {%- endif -%}
    {%- for destination, name in destinations.items() -%}
        {%- if destination not in segment_destinations() -%}
            {{ exceptions.raise_compiler_error(where ~ '.destinations names ' ~ (destination | tojson) ~ '; expected one of ' ~ segment_destinations().keys() | join(', ')) }}
        {%- endif -%}
        {%- if name is not string or name | trim == '' -%}
            {{ exceptions.raise_compiler_error(where ~ '.destinations.' ~ destination ~ ' must be a non-empty name') }}
        {%- endif -%}
    {%- endfor -%}
    {%- set schedule = declared.schedule or 'frequent' -%}
    {%- if schedule not in ['frequent', 'daily'] -%}
        {{ exceptions.raise_compiler_error(where ~ '.schedule is ' ~ (schedule | tojson) ~ '; expected frequent or daily') }}
    {%- endif -%}
    {%- set window, window_text = [], [] -%}
    {%- set declared_window = declared.window or [] -%}
    {%- if declared_window is mapping or declared_window is string -%}{%- set declared_window = [declared_window] -%}{%- endif -%}
    {%- for moment in declared_window -%}
        {%- if moment is not mapping or moment.anchor not in ['order', 'checkout', 'event'] -%}
            {{ exceptions.raise_compiler_error(where ~ '.window: each entry is {anchor: order|checkout|event, after: <interval>}; got ' ~ (moment | tojson)) }}
        {%- endif -%}
        {%- set interval = segment_interval(moment.after, where ~ '.window.after') -%}
        {%- do window.append({'anchor': moment.anchor, 'unit': interval.unit, 'amount': interval.amount}) -%}
        {%- do window_text.append(moment.anchor ~ ' + ' ~ moment.after) -%}
    {%- endfor -%}
    {{ return({
        'name': node.name,
        'relation': node.schema ~ '.' ~ (node.alias or node.name),
        'description': node.description or '',
        'category': declared.category,
        'destinations': destinations,
        'schedule': schedule,
        'window': window,
        'window_text': window_text | join('; '),
        'ttl': segment_interval(declared.ttl, where ~ '.ttl') if declared.ttl else none,
        'ttl_text': declared.ttl or none,
    }) }}
{% endmacro %}


{#- '4 hours' -> {'unit': 'hour', 'amount': 4}, as dbt.dateadd takes it. -#}
{% macro segment_interval(text, where) %}
    {%- set match = modules.re.fullmatch('\s*(\d+)\s*(minute|hour|day)s?\s*', (text or '') | string) -%}
    {%- if not match -%}
        {{ exceptions.raise_compiler_error(where ~ ' is ' ~ (text | tojson) ~ "; expected '<n> minutes', '<n> hours' or '<n> days'") }}
    {%- endif -%}
    {{ return({'unit': match.group(2), 'amount': match.group(1) | int}) }}
{% endmacro %}


{#- A Jinja value as a SQL string literal, or a typed null. -#}
{% macro segment_literal(value) -%}
    {%- if value is none or value == '' -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}


{#- Fails the build when the segment models differ from macros/segments/registered_segments.sql, which
    dbt needs to order segment_memberships after every segment. -#}
{% macro check_registered_segments(segments) %}
    {%- set found = segments | map(attribute='name') | list -%}
    {%- set registered = registered_segments() -%}
    {%- set added = found | reject('in', registered) | list -%}
    {%- set removed = registered | reject('in', found) | list -%}
    {%- if added or removed -%}
        {{ exceptions.raise_compiler_error(
            'segment models changed since macros/segments/registered_segments.sql was written (new: ' ~
            (added | join(', ') or 'none') ~ '; removed: ' ~ (removed | join(', ') or 'none') ~
            '). Run `relay segments` or `make manifest` to register them, then build again.') }}
    {%- endif -%}
{% endmacro %}


{#- A promotional segment model's own filter: the person is neither suppressed nor held out. segment_memberships
    leaves such people out whatever the model selects; a model that says so itself agrees with what is synced
    (tests/assert_promotional_segments_select_no_excluded_people warns about one that does not). -#}
{% macro relay_not_excluded(customer_key) %}
    {{ customer_key }} not in (select customer_key from {{ ref('customer_segments') }} where is_suppressed or is_holdout)
{%- endmacro %}
