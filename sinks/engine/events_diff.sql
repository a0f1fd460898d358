-- The plan of an events sync (sinks/engine/events.py fills the placeholders): the model's events the
-- destination has not acknowledged, as the temp table _events, each with why it is skipped, if it is.
-- Parameters: $sync, $now (when the run planned), $first (no event of this sync was ever sent or skipped).
--   {key} {identifier} {payload}  the row's event id, identifier and payload (sinks/engine/changes.py)
--   {occurred_at} {consented} {name}  the event's time (a timestamp), consent (a boolean) and name
--   {clock}                        the data clock: events' ages are measured against it
--   {max_age_s} {backfill_s}       seconds, or null
create or replace temp table _events as
with model as (
    select {key} as record_key, {identifier} as identifier, {payload} as payload,
           {occurred_at} as occurred_at, {consented} as consented, cast({name} as varchar) as event_name
    from {relation} m
    -- Settled events leave first, on their keys alone: most of a model is history that was skipped, and
    -- hashing its payloads every run would cost what the model holds, not what changed.
    where {key} not in (select record_key from relay.sync_skipped where sync_name = $sync)
      and {key} not in (select record_key from relay.sync_in_flight where sync_name = $sync)  -- fate unknown
),
hashed as (select *, md5(payload) as row_hash from model),
sent as (select record_key, row_hash from relay.sync_state where sync_name = $sync),
clock as (select coalesce(({clock}), $now) as at)
select
    h.*,
    s.row_hash as sent_hash,
    case
        when s.record_key is not null then null
        when not coalesce(h.consented, false) then 'no consent'
        when h.occurred_at < clock.at - to_seconds(cast({max_age_s} as double)) then 'older than max_event_age when first seen'
        when $first and h.occurred_at < clock.at - to_seconds(cast({backfill_s} as double))
            then 'before the backfill window of the first sync'
    end as skip_reason
from hashed h
cross join clock
left join sent s using (record_key)
where s.record_key is null or s.row_hash <> h.row_hash;

-- Every event to send is an add, a person's in time order. Each is `alone`: no step of another waits for it
-- (unlike an attribute sync's, see diff.sql), so a destination's bulk path may take any of them; each event
-- carries its own time, and one request keeps its events' order. Numbered without payloads (as in diff.sql).
create or replace temp table _changes as
with numbered as (
    select row_number() over (order by identifier, occurred_at, record_key) as rn, record_key
    from _events
    where sent_hash is null and skip_reason is null
)
select
    n.rn, e.record_key, 'add' as kind, e.identifier, cast(null as varchar) as prev_identifier,
    e.payload, cast(null as json) as prev_payload, e.row_hash, false as resend, false as leaving,
    true as alone
from numbered n
join _events e using (record_key)
order by n.rn;
