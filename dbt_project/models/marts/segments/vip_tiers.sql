{#- VIP tier per person (gold / silver / bronze / none) from net lifetime value (valid orders minus
    refunds, shop currency).
    Cut-offs: var vip_tier_method = 'absolute' uses var vip_tier_cutoffs; 'percentile' puts the top
    var vip_tier_top_shares of buyers in each tier, with cut-offs re-based once per calendar month
    (from net LTV at the start of the as-of month), so they do not drift daily.
    Hysteresis, so tier changes are deliberate: a person enters a tier when net LTV reaches its
    cut-off, and keeps it while net LTV stays above cut-off * (1 - var vip_downgrade_band) provided
    their peak net LTV (highest running total over their order/refund history) once reached it. A
    small refund therefore does not flap the tier; a large one, or a new month's cut-offs, does.
    Derived from data only: a rebuild gives the same tiers. -#}

{%- set method = var('vip_tier_method', 'absolute') -%}
{%- set cutoffs = var('vip_tier_cutoffs', {'gold': 1000, 'silver': 500, 'bronze': 250}) -%}
{%- set shares = var('vip_tier_top_shares', {'gold': 0.01, 'silver': 0.05, 'bronze': 0.15}) -%}
{%- set band = var('vip_downgrade_band', 0.1) -%}
{%- set tiers = ['gold', 'silver', 'bronze'] -%}

with customers as (
    select * from {{ ref('customers') }}
    where {{ in_scope('customer_key') }}
),

as_of as (
    select as_of from {{ ref('int_as_of') }}
),

orders as (
    select * from {{ ref('int_orders_attributed') }}
    where is_valid
        and customer_key is not null
        -- Scoped: percentile cut-offs need every buyer, so then the scope is everyone (int_scope_keys).
        and {{ in_scope('customer_key') }}
),

refunds as (
    select * from {{ ref('int_refunds_attributed') }}
),

-- Every change to a person's net LTV: +order total when placed, -refund when refunded.
ledger as (
    select
        orders.customer_key,
        orders.created_at as entry_at,
        0 as entry_order,
        orders.total_price as amount
    from orders
    cross join as_of
    where orders.created_at <= as_of.as_of

    union all

    select
        orders.customer_key,
        refunds.refunded_at as entry_at,
        1 as entry_order,
        -1 * refunds.amount as amount
    from refunds
    inner join orders
        on refunds.order_id = orders.order_id
    cross join as_of
    where refunds.refunded_at <= as_of.as_of
),

running as (
    select
        customer_key,
        entry_at,
        sum(amount) over (
            partition by customer_key
            order by entry_at, entry_order
            rows between unbounded preceding and current row
        ) as running_net
    from ledger
),

ltv as (
    select
        ledger.customer_key,
        sum(ledger.amount) as net_ltv,
        sum(case when ledger.entry_at < {{ dbt.date_trunc('month', 'as_of.as_of') }} then ledger.amount else 0 end) as net_ltv_at_month_start,
        max(case when ledger.entry_at < {{ dbt.date_trunc('month', 'as_of.as_of') }} then 1 else 0 end) = 1 as was_buyer_at_month_start
    from ledger
    cross join as_of
    group by ledger.customer_key
),

peaks as (
    select
        customer_key,
        max(running_net) as peak_net_ltv
    from running
    group by customer_key
),

{%- if method == 'percentile' %}

ranked_buyers as (
    select
        net_ltv_at_month_start,
        row_number() over (order by net_ltv_at_month_start desc, customer_key) as ltv_rank,
        count(*) over () as buyer_count
    from ltv
    where was_buyer_at_month_start
),

cutoffs as (
    select
        {%- for tier in tiers %}
        min(case when ltv_rank <= ceiling({{ shares[tier] }} * buyer_count) then net_ltv_at_month_start end) as {{ tier }}_cutoff{{ "," if not loop.last }}
        {%- endfor %}
    from ranked_buyers
),

{%- else %}

cutoffs as (
    select
        {%- for tier in tiers %}
        cast({{ cutoffs[tier] }} as {{ dbt.type_numeric() }}) as {{ tier }}_cutoff{{ "," if not loop.last }}
        {%- endfor %}
),

{%- endif %}

tiered as (
    select
        customers.customer_key,
        cast(coalesce(ltv.net_ltv, 0) as {{ dbt.type_numeric() }}) as lifetime_total_net,
        cast(coalesce(peaks.peak_net_ltv, 0) as {{ dbt.type_numeric() }}) as peak_net_ltv,
        {%- for tier in tiers %}
        cutoffs.{{ tier }}_cutoff,
        {%- endfor %}
        case
            {%- for tier in tiers %}
            when ltv.net_ltv > 0
                and (
                    ltv.net_ltv >= cutoffs.{{ tier }}_cutoff
                    or (
                        peaks.peak_net_ltv >= cutoffs.{{ tier }}_cutoff
                        and ltv.net_ltv >= cutoffs.{{ tier }}_cutoff * (1 - {{ band }})
                    )
                )
                then '{{ tier }}'
            {%- endfor %}
            else 'none'
        end as vip_tier
    from customers
    cross join cutoffs
    left join ltv
        on customers.customer_key = ltv.customer_key
    left join peaks
        on customers.customer_key = peaks.customer_key
),

final as (
    select
        customer_key,
        lifetime_total_net,
        peak_net_ltv,
        {%- for tier in tiers %}
        {{ tier }}_cutoff,
        {%- endfor %}
        '{{ method }}' as vip_tier_method,
        vip_tier
    from tiered
)

select * from final
