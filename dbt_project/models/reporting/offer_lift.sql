{#- Did the offer work? Per offer and month of entry (offer_exposures), the treated arm against the holdout:
    people, conversion rate and revenue per person in the conversion window; the incremental lift, absolute
    and relative, with a 95% confidence interval; the offer's redemption rate among the treated; what it
    cost and earned (margin impact); and, per month of redemption (offer_redemptions), the redemptions that
    leaked to people who could not have the offer and the share by discount abusers.

    The interval is Agresti and Caffo's for a difference of two proportions: the normal approximation
    (unpooled) after adding one conversion and one non-conversion to each arm,
    (p~_t - p~_h) +/- 1.96 * sqrt(p~_t (1 - p~_t) / (n_t + 2) + p~_h (1 - p~_h) / (n_h + 2)), p~ = (x + 1) / (n + 2).
    Unlike the plain Wald interval it keeps close to 95% coverage with a small holdout or an arm with no
    conversions. It assumes independent units: each person counts once a month (their first entry; a cart
    abandoner may enter many times), and the holdout is a random draw (a hash of the key). A small holdout makes it wide: that is the answer
    too. Margin impact = incremental revenue x var relay_gross_margin_rate - the discount the treated
    redeemed in their window. -#}

with ranked as (
    select
        *,
        row_number() over (partition by offer, period, customer_key order by entered_at) as nth_in_period
    from {{ ref('offer_exposures') }}
),

-- The unit is a person in a month (their first entry): a person's entries are not independent of each other.
exposures as (
    select * from ranked
    where nth_in_period = 1
),

redemptions as (
    select * from {{ ref('offer_redemptions') }}
),

treated_redemptions as (
    select
        exposures.offer,
        exposures.period,
        count(distinct exposures.customer_key || cast(exposures.entered_at as {{ dbt.type_string() }})) as redeemers,
        sum(redemptions.discount) as discount_cost
    from exposures
    inner join redemptions
        on exposures.offer = redemptions.offer
        and exposures.customer_key = redemptions.customer_key
        and redemptions.redeemed_at >= exposures.entered_at
        and redemptions.redeemed_at < exposures.converts_until
    where exposures.arm = 'treated'
    group by 1, 2
),

arms as (
    select
        offer,
        period,
        count(case when arm = 'treated' then 1 end) as treated_people,
        count(case when arm = 'treated' and converted then 1 end) as treated_converted,
        sum(case when arm = 'treated' then revenue else 0 end) as treated_revenue,
        count(case when arm = 'holdout' then 1 end) as holdout_people,
        count(case when arm = 'holdout' and converted then 1 end) as holdout_converted,
        sum(case when arm = 'holdout' then revenue else 0 end) as holdout_revenue
    from exposures
    group by 1, 2
),

rates as (
    select
        *,
        (treated_converted + 1.0) / (treated_people + 2) as treated_adjusted_rate,
        (holdout_converted + 1.0) / (holdout_people + 2) as holdout_adjusted_rate,
        treated_converted * 1.0 / nullif(treated_people, 0) as treated_conversion_rate,
        holdout_converted * 1.0 / nullif(holdout_people, 0) as holdout_conversion_rate,
        cast(treated_revenue as double) / nullif(treated_people, 0) as treated_revenue_per_person,
        cast(holdout_revenue as double) / nullif(holdout_people, 0) as holdout_revenue_per_person
    from arms
),

intervals as (
    select
        *,
        sqrt(treated_adjusted_rate * (1 - treated_adjusted_rate) / (treated_people + 2)
             + holdout_adjusted_rate * (1 - holdout_adjusted_rate) / (holdout_people + 2)) as adjusted_se
    from rates
),

leakage as (
    select
        offer,
        {{ dbt.date_trunc('month', 'redeemed_at') }} as period,
        count(*) as redemptions,
        count(leaked_because) as leaked_redemptions,
        count(case when leaked_because = 'holdout' then 1 end) as leaked_to_holdout,
        count(case when leaked_because = 'outside_window' then 1 end) as leaked_outside_window,
        count(case when is_discount_abuser then 1 end) as abuser_redemptions
    from redemptions
    group by 1, 2
),

final as (
    select
        rates.offer,
        rates.period,
        rates.treated_people,
        rates.treated_converted,
        rates.treated_conversion_rate,
        rates.treated_revenue_per_person,
        rates.holdout_people,
        rates.holdout_converted,
        rates.holdout_conversion_rate,
        rates.holdout_revenue_per_person,
        rates.treated_conversion_rate - rates.holdout_conversion_rate as lift_absolute,
        (rates.treated_conversion_rate - rates.holdout_conversion_rate) / nullif(rates.holdout_conversion_rate, 0) as lift_relative,
        rates.treated_adjusted_rate - rates.holdout_adjusted_rate - 1.96 * rates.adjusted_se as lift_ci_low,
        rates.treated_adjusted_rate - rates.holdout_adjusted_rate + 1.96 * rates.adjusted_se as lift_ci_high,
        coalesce(treated_redemptions.redeemers, 0) * 1.0 / nullif(rates.treated_people, 0) as redemption_rate,
        (rates.treated_revenue_per_person - rates.holdout_revenue_per_person) * rates.treated_people as incremental_revenue,
        coalesce(cast(treated_redemptions.discount_cost as double), 0) as discount_cost,
        (rates.treated_revenue_per_person - rates.holdout_revenue_per_person) * rates.treated_people
            * {{ var('relay_gross_margin_rate') }} - coalesce(cast(treated_redemptions.discount_cost as double), 0) as margin_impact,
        coalesce(leakage.redemptions, 0) as redemptions,
        coalesce(leakage.leaked_redemptions, 0) as leaked_redemptions,
        coalesce(leakage.leaked_to_holdout, 0) as leaked_to_holdout,
        coalesce(leakage.leaked_outside_window, 0) as leaked_outside_window,
        coalesce(leakage.leaked_redemptions, 0) * 1.0 / nullif(leakage.redemptions, 0) as leakage_rate,
        coalesce(leakage.abuser_redemptions, 0) * 1.0 / nullif(leakage.redemptions, 0) as abuse_rate
    from intervals as rates
    left join treated_redemptions
        on rates.offer = treated_redemptions.offer
        and rates.period = treated_redemptions.period
    left join leakage
        on rates.offer = leakage.offer
        and rates.period = leakage.period
)

select * from final
