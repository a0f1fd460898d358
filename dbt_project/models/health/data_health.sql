{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        schema='marts',
        tags=['daily']
    )
}}

{#- What the pipeline set aside, nulled or cannot reach, and why: one row per check, subject and reason
    for every build that runs this model (appended, never rebuilt, so the history shows a drift).
    Thresholds (var relay_data_health_max_share, by reason) turn a share into status 'warn'; the tests in
    _health__models.yml warn on them, one Dagster check each. Nothing staging drops goes uncounted:
      raw_table_absent          an optional raw table not landed: built as an empty relation
      rows_set_aside            superseded_version (a key loaded twice: the newest wins), soft_deleted,
                                future_dated (stamped after the loader wrote it; macros/data_quality.sql)
      contact_values_unusable   an email or phone landed but not usable as an address: hashed (a digest,
                                kept as an identity link, never sent) or invalid
      identifiers_not_linking   the identity guard's refusals (int_identifiers_guarded): placeholder,
                                hashed (a digest before the @), shared_by_accounts
      contact_address_withheld  a shared address is the contact of the account that used it last; the
                                other accounts' people do not get it (customers.sql)
      orphans                   orders naming a customer row that never landed, valid orders that belong
                                to no person, refunds and order lines whose order is missing
      unreachable               people a destination cannot reach: Cordial (no email), Customer.io (no
                                email and no phone: a profile no message can reach)
-#}

{%- set thresholds = var('relay_data_health_max_share', {}) %}
{%- set newest_first = {'shopify.customer': ['_fivetran_synced', 'updated_at'], 'shopify.order': ['_fivetran_synced', 'updated_at'],
                        'shopify.abandoned_checkout': ['_fivetran_synced', 'updated_at'],
                        'salesforce.contact': ['_fivetran_synced', 'last_modified_date']} %}
{%- set contact_columns = {
    'shopify.customer': {'email': 'email', 'phone': 'phone'},
    'shopify.order': {'email': 'email', 'phone': "coalesce(" ~ clean_text('phone') ~ ", " ~ clean_text('billing_address_phone') ~ ")"},
    'shopify.abandoned_checkout': {'email': 'email', 'phone': 'phone'},
    'segment.identifies': {'email': 'email', 'phone': 'phone'},
    'salesforce.contact': {'email': 'email', 'phone': "coalesce(" ~ clean_text('mobile_phone') ~ ", " ~ clean_text('phone') ~ ")"},
} %}

{%- set raw_tables = [] %}

with
{%- for table in relay_raw_keys() %}
    {%- set source_name, table_name = table.split('.') %}
    {%- set node = graph.sources.get('source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name) if execute else none %}
    {%- if node and relay_source_present(source_name, table_name) %}
        {%- set live = relay_raw_live_rows(node) %}
        {%- set dated = table in ('shopify.order', 'shopify.abandoned_checkout') %}
        {%- set ranked = live != 'true' or dated %}
        {%- set contact = contact_columns.get(table) %}
        {%- do raw_tables.append(('raw_' ~ loop.index, table, ranked, dated, contact)) %}
-- {{ table }}: one scan for every count.
raw_{{ loop.index }} as (
    select
        count(*) as landed,
        count(*) - count(distinct {{ relay_raw_row_key(table) }}) as superseded_version
        {%- if ranked %},
        count(case when _relay_version_rank = 1 then 1 end) as newest,
        count(case when _relay_version_rank = 1 and not ({{ live }}) then 1 end) as soft_deleted
        {%- endif %}
        {%- if dated %},
        count(case when _relay_version_rank = 1 and {{ live }} and {{ relay_is_future_dated('created_at') }} then 1 end) as future_dated
        {%- endif %}
        {%- if contact %},
        count({{ clean_text(contact.email) }}) as emails_landed,
        count({{ hashed_email(contact.email) }}) as emails_hashed,
        count(case when {{ clean_text(contact.email) }} is not null and {{ hashed_email(contact.email) }} is null
            and {{ normalize_email(contact.email) }} is null then 1 end) as emails_invalid,
        count({{ clean_text(contact.phone) }}) as phones_landed,
        count(case when {{ clean_text(contact.phone) }} is not null and {{ valid_e164(normalize_phone(contact.phone)) }} is null then 1 end) as phones_invalid
        {%- endif %}
    from (
        select *{% if ranked %}, {{ relay_version_rank(table, newest_first.get(table, ['_fivetran_synced'])) }} as _relay_version_rank{% endif %}
        from ({{ relay_source(source_name, table_name) }}) as raw
    ) as versions
),
    {%- endif %}
{%- endfor %}

raw_tables as (
    select
        cast(null as {{ dbt.type_string() }}) as check_name,
        cast(null as {{ dbt.type_string() }}) as subject,
        cast(null as {{ dbt.type_string() }}) as reason,
        cast(null as {{ dbt.type_bigint() }}) as affected_rows,
        cast(null as {{ dbt.type_bigint() }}) as examined_rows
    where 1 = 0
    {%- for table in relay_raw_keys() %}
        {%- set source_name, table_name = table.split('.') %}
        {%- if execute and not relay_source_present(source_name, table_name) %}
    union all
    select 'raw_table_absent', '{{ table }}', 'not landed', 1, 1
        {%- endif %}
    {%- endfor %}
    {%- for cte, table, ranked, dated, contact in raw_tables %}
    union all
    select 'rows_set_aside', '{{ table }}', 'superseded_version', superseded_version, landed from {{ cte }}
        {%- if ranked %}
    union all
    select 'rows_set_aside', '{{ table }}', 'soft_deleted', soft_deleted, newest from {{ cte }}
        {%- endif %}
        {%- if dated %}
    union all
    select 'rows_set_aside', '{{ table }}', 'future_dated', future_dated, newest from {{ cte }}
        {%- endif %}
        {%- if contact %}
    union all
    select 'contact_values_unusable', '{{ table }}.email', 'hashed', emails_hashed, emails_landed from {{ cte }}
    union all
    select 'contact_values_unusable', '{{ table }}.email', 'invalid', emails_invalid, emails_landed from {{ cte }}
    union all
    select 'contact_values_unusable', '{{ table }}.phone', 'invalid', phones_invalid, phones_landed from {{ cte }}
        {%- endif %}
    {%- endfor %}
),

identifiers as (
    select
        'identifiers_not_linking' as check_name,
        identifier_type as subject,
        guard_reason as reason,
        count(*) as affected_rows,
        max(examined) as examined_rows
    from (
        select identifier_type, guard_reason, count(*) over (partition by identifier_type) as examined
        from {{ ref('int_identifiers_guarded') }}
    ) as guarded
    where guard_reason is not null
    group by identifier_type, guard_reason
),

-- Of the Shopify accounts carrying an email (a phone), those whose shared address is another's contact.
shared_addresses as (
    select
        'contact_address_withheld' as check_name,
        accounts.identifier_type as subject,
        'held_by_another_account' as reason,
        coalesce(max(owners.withheld), 0) as affected_rows,
        count(distinct accounts.record_id) as examined_rows
    from {{ ref('int_identifiers_observed') }} as accounts
    left join (
        select identifier_type, sum(account_count - 1) as withheld
        from ({{ relay_shared_address_owners() }}) as owned
        group by identifier_type
    ) as owners
        on accounts.identifier_type = owners.identifier_type
    where accounts.record_type = 'shopify_customer'
        and accounts.identifier_type in ('email', 'phone')
    group by accounts.identifier_type
),

orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

orphans as (
    select
        'orphans' as check_name,
        'shopify.order' as subject,
        'no_customer_row' as reason,
        count(case when customer_id not in (select customer_id from {{ ref('stg_shopify__customers') }}) then 1 end) as affected_rows,
        count(*) as examined_rows
    from orders
    where customer_id is not null

    union all

    select
        'orphans',
        'shopify.order',
        'no_person',
        count(case when customer_key is null then 1 end),
        count(*)
    from {{ ref('int_orders_attributed') }}
    where is_valid

    {%- for subject, model in [('shopify.refund', 'stg_shopify__refunds'), ('shopify.order_line', 'stg_shopify__order_lines')] %}

    union all

    select
        'orphans',
        '{{ subject }}',
        'no_order',
        count(case when order_id not in (select order_id from orders) then 1 end),
        count(*)
    from {{ ref(model) }}
    {%- endfor %}
),

people as (
    select * from {{ ref('customers') }}
),

reachability as (
    select 'unreachable' as check_name, 'cordial' as subject, 'no_email' as reason,
        count(case when cordial_email is null then 1 end) as affected_rows, count(*) as examined_rows
    from people

    union all

    select 'unreachable', 'customerio', 'no_email_or_phone',
        count(case when email is null and phone is null then 1 end), count(*)
    from people

    union all

    select 'unreachable', 'talon_one', 'no_integration_id',
        count(case when talon_one_integration_id is null then 1 end), count(*)
    from people
),

checks as (
    select * from raw_tables
    union all
    select * from identifiers
    union all
    select * from shared_addresses
    union all
    select * from orphans
    union all
    select * from reachability
),

final as (
    select
        '{{ invocation_id }}' as invocation_id,
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }}) as measured_at,
        (select as_of from {{ ref('int_as_of') }}) as as_of,
        check_name,
        subject,
        reason,
        affected_rows,
        examined_rows,
        case when examined_rows > 0 then cast(affected_rows as {{ dbt.type_float() }}) / examined_rows end as share,
        case reason
            {%- for reason, share in thresholds.items() %}
            when '{{ reason }}' then cast({{ share }} as {{ dbt.type_float() }})
            {%- endfor %}
        end as max_share,
        case
            {%- for reason, share in thresholds.items() %}
            when reason = '{{ reason }}' and examined_rows > 0
                and cast(affected_rows as {{ dbt.type_float() }}) / examined_rows > {{ share }} then 'warn'
            {%- endfor %}
            when reason in ({% for reason in thresholds %}'{{ reason }}'{{ ', ' if not loop.last }}{% endfor %}) then 'ok'
            else 'info'
        end as status
    from checks
)

select * from final
