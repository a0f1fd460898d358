-- The plan: every step one apply takes, as the temp table _changes (sinks/engine/plan.py fills the
-- placeholders and runs the two statements in turn). Parameters: $sync (the sync's name), $now (when the
-- run planned).
--   {key} {identifier} {payload}  the model row's record key, identifier and payload (sinks/engine/changes.py)
--   {relation}                     the sync model
--   {model_filter} {state_filter}  what the diff covers (sinks/engine/scope.py), else true
--   {changed}                      when a row counts as changed (every row on a full resync)
--   {forced}                       a row re-asserted because a write of unknown fate may have undone it
--
-- First the steps without payloads: numbering them is a window over the whole plan, which DuckDB holds in
-- memory, so it sees keys and hashes only.
create or replace temp table _steps as
with model as (
    select {key} as record_key, {identifier} as identifier, md5({payload}) as row_hash
    from {relation} m
    where {model_filter}
),
state as (select record_key, identifier, row_hash from relay.sync_state where sync_name = $sync and {state_filter}),
-- Records a write of unknown fate may have undone, once it can no longer land.
marks as (
    select record_key, identifier from relay.sync_unconfirmed
    where sync_name = $sync and resend_after <= $now
),
diff as (
    select
        coalesce(m.record_key, s.record_key) as record_key,
        case when s.record_key is null then 'add' when m.record_key is null then 'remove' else 'change' end as kind,
        m.identifier,
        s.identifier as prev_identifier,
        m.row_hash,
        {forced} as resend
    from model m
    full outer join state s on m.record_key = s.record_key
    where s.record_key is null or m.record_key is null or {changed} or {forced}
),
steps as (
    select *, coalesce(identifier, prev_identifier) as addressed, false as leaving from diff
    union all
    -- A record whose identifier changed must also leave its old one. That step sorts with the old
    -- identifier, ahead of any other record's write to it, so the two never run in parallel.
    select *, prev_identifier, true from diff
    where kind = 'change' and identifier is distinct from prev_identifier and prev_identifier is not null
    union all
    -- A marked record no longer at the marked identifier leaves it again (unless a step above does); the
    -- only step that is both a remove and leaving.
    select k.record_key, 'remove', null, k.identifier, null, true, k.identifier, true
    from marks k
    where not exists (select 1 from model m where m.record_key = k.record_key and m.identifier = k.identifier)
      and not exists (select 1 from diff d where d.record_key = k.record_key and d.prev_identifier = k.identifier
                      and d.identifier is distinct from d.prev_identifier)
)
select row_number() over w as rn, * exclude (addressed),
       -- no other step addresses this identifier: nothing orders this row against another
       addressed is distinct from lag(addressed) over w and addressed is distinct from lead(addressed) over w
           as alone
from steps
window w as (order by addressed, leaving desc, record_key);

-- Then each step with what it sends (the model row's payload) and what the destination was last sent (the
-- state's payload, or the marked write's), stored in rn order (an ordinary sort, which spills under a memory
-- limit) so that a flush's range of rns reads only a few row groups.
create or replace temp table _changes as
select s.rn, s.record_key, s.kind, s.identifier, s.prev_identifier, m.payload,
       coalesce(p.payload, k.payload) as prev_payload, s.row_hash, s.resend, s.leaving, s.alone
from _steps s
left join (select {key} as _relay_key, {payload} as payload from {relation} m where {model_filter}) m
    on s.kind <> 'remove' and m._relay_key = s.record_key
left join relay.sync_state p
    on p.sync_name = $sync and s.kind <> 'add' and not (s.kind = 'remove' and s.leaving) and p.record_key = s.record_key
left join relay.sync_unconfirmed k
    on k.sync_name = $sync and s.kind = 'remove' and s.leaving and k.record_key = s.record_key
   and k.identifier = s.prev_identifier
order by s.rn;

drop table _steps
