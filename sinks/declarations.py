"""Sync declarations, read from the dbt manifest: a sync is a dbt model whose `meta.sync` says where
its rows go. Adding a sync is SQL + YAML; nothing here is per sync."""

import functools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

DESTINATIONS = ("customerio", "cordial", "talon_one")
OBJECTS = ("attributes", "membership", "events")
# Events are facts: one that leaves the model is not retracted.
ON_EXIT = {"attributes": ("clear", "ignore"), "membership": ("remove", "ignore"), "events": ("keep",)}
INTERVAL_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
SCHEDULES = ("frequent", "daily")


@dataclass(frozen=True)
class EventOptions:
    """How an events sync reads its model (meta.sync of object events)."""
    name_column: str  # the event's name
    time_column: str  # when it happened
    max_age_s: float | None  # older than this (by the data clock) when first seen: skipped, never sent
    backfill_s: float | None  # a first sync skips events older than this; 0 = every one it finds; None = none skipped
    consent_column: str | None  # a boolean column: an event of a row where it is not true is skipped


class DeclarationError(ValueError):
    """A sync model's meta block is wrong; the message names the model and the field."""


@dataclass(frozen=True)
class SyncSpec:
    name: str  # the dbt model name, e.g. sync_customerio__people
    relation: str  # schema.table in the warehouse
    destination: str
    object: str
    primary_key: tuple[str, ...]
    identifier: str
    on_exit: str
    schedule: str
    columns: dict[str, str]  # column -> declared data_type, in model order
    column_meta: dict[str, dict] = field(default_factory=dict)
    max_change_share: float | None = None  # blast-radius override for this sync
    unique_id: str = ""
    # A model dbt rebuilds for the people in scope only (incremental_strategy relay_scoped, keyed by
    # customer_key): the relation holding the last build's people in scope, which the diff may limit
    # itself to (see SyncRun._scope).
    scope_relation: str | None = None
    events: EventOptions | None = None  # object events only
    # The data clock (relation, column) event ages are measured against; None: the wall clock.
    clock: tuple[str, str] | None = None
    # An attributes sync of people: the relation of identity merges (retired_key, surviving_key) whose retired
    # records the destination merges into their survivor (sinks/engine/merges.py); None: a retired key just exits.
    merges: str | None = None

    @functools.cached_property
    def attribute_columns(self) -> list[str]:
        """What is sent as the record's attributes (an event's properties)."""
        fixed = set(self.primary_key) | {self.identifier}
        if self.events:
            fixed |= {self.events.name_column, self.events.time_column, self.events.consent_column}
        return [c for c in self.columns if c not in fixed]

    @functools.cached_property
    def exit_values(self) -> dict[str, object]:
        """Column meta `exit_value`: what the destination holds for the column once the record leaves the model,
        and what stands in for a null where the destination cannot unset the column's type (Talon.One)."""
        return {c: meta["exit_value"] for c, meta in self.column_meta.items() if "exit_value" in meta}


SCOPE_MODEL = "int_scope_keys"  # dbt_project/models/intermediate/scope: the people a scoped build rebuilt
SCOPE_KEY = "customer_key"
SCOPE_LOG = "relay.dbt_builds"  # one row per dbt build (dbt_project/models/builds/dbt_builds)
CLOCK_MODEL, CLOCK_COLUMN = "int_as_of", "as_of"  # the data clock (dbt_project/models/intermediate/int_as_of)


def load_specs(manifest_path: Path) -> list[SyncSpec]:
    from sinks import destinations  # the adapters import this module

    manifest = json.loads(Path(manifest_path).read_text())
    relations = {n["name"]: f"{n['schema']}.{n.get('alias') or n['name']}" for n in manifest["nodes"].values()
                 if n.get("resource_type") == "model"}
    scope = relations.get(SCOPE_MODEL)
    clock = (relations[CLOCK_MODEL], CLOCK_COLUMN) if CLOCK_MODEL in relations else None
    specs = []
    for unique_id, node in sorted(manifest["nodes"].items()):
        if node.get("resource_type") != "model":
            continue
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        if "sync" not in meta:
            continue
        spec = _spec(unique_id, node, meta["sync"])
        if spec.merges is not None:
            if spec.merges not in relations:
                raise DeclarationError(f"sync model {spec.name}: meta.sync.merges names model {spec.merges!r}, which "
                                       "the dbt project does not have (expected e.g. identity_merges)")
            spec = replace(spec, merges=relations[spec.merges])
        if spec.events:
            spec = replace(spec, clock=clock)
        config = node.get("config") or {}
        problems = destinations.declaration_problems(spec)
        if problems:
            raise DeclarationError(f"sync model {spec.name}: {problems[0]}")
        if (scope and config.get("incremental_strategy") == "relay_scoped" and SCOPE_KEY in spec.primary_key
                and config.get("scope_delete", [[SCOPE_KEY, "key"]]) == [[SCOPE_KEY, "key"]]):
            spec = replace(spec, scope_relation=scope)
        specs.append(spec)
    return specs


def _spec(unique_id: str, node: dict, sync: dict) -> SyncSpec:
    name = node["name"]

    def fail(message: str) -> DeclarationError:
        return DeclarationError(f"sync model {name}: meta.sync.{message}")

    if not isinstance(sync, dict):
        raise fail("must be a mapping")
    destination = sync.get("destination")
    if destination not in DESTINATIONS:
        raise fail(f"destination is {destination!r}; expected one of {', '.join(DESTINATIONS)}")
    obj = sync.get("object")
    if obj not in OBJECTS:
        raise fail(f"object is {obj!r}; expected one of {', '.join(OBJECTS)}")
    columns = {c: (spec.get("data_type") or "").lower() for c, spec in node.get("columns", {}).items()}
    if not columns:
        raise fail("requires the model's columns to be declared in YAML (an enforced contract)")
    key = sync.get("primary_key")
    if isinstance(key, str):
        key = [key]
    if not key or not all(isinstance(k, str) for k in key):
        raise fail("primary_key must be a column name or a list of column names")
    identifier = sync.get("identifier", key[0])
    for column in [*key, identifier]:
        if column not in columns:
            raise fail(f"names column {column!r}, which the model does not declare (columns: {', '.join(columns)})")
    if obj == "membership" and "audience" not in key:
        raise fail("primary_key of a membership sync must include the 'audience' column")
    on_exit = sync.get("on_exit", ON_EXIT[obj][0])
    if on_exit not in ON_EXIT[obj]:
        raise fail(f"on_exit is {on_exit!r}; for object {obj} expected one of {', '.join(ON_EXIT[obj])}")
    schedule = sync.get("schedule", "daily")
    if schedule not in SCHEDULES:
        raise fail(f"schedule is {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    events = _event_options(sync, columns, fail) if obj == "events" else None
    share = sync.get("max_change_share")
    if share is not None and not (isinstance(share, (int, float)) and 0 < share <= 1):
        raise fail(f"max_change_share is {share!r}; expected a fraction in (0, 1]")
    column_meta = _column_meta(name, node, columns, obj, [*key, identifier])
    merges = sync.get("merges")
    if merges is not None and (obj != "attributes" or len(key) != 1 or not isinstance(merges, str)):
        raise fail(f"merges is {merges!r}: a model name (e.g. identity_merges), for an attributes sync keyed by "
                   "one column that holds the keys it retires")
    return SyncSpec(
        name=name,
        relation=f"{node['schema']}.{node.get('alias') or name}",
        destination=destination,
        object=obj,
        primary_key=tuple(key),
        identifier=identifier,
        on_exit=on_exit,
        schedule=schedule,
        columns=columns,
        column_meta=column_meta,
        max_change_share=share,
        unique_id=unique_id,
        events=events,
        merges=merges,
    )


def _column_meta(name: str, node: dict, columns: dict[str, str], obj: str, fixed: list[str]) -> dict[str, dict]:
    """Each column's meta, its exit_value checked."""
    column_meta = {
        c: {**(spec.get("meta") or {}), **((spec.get("config") or {}).get("meta") or {})}
        for c, spec in node.get("columns", {}).items()
    }
    for column, meta in column_meta.items():
        if "exit_value" in meta:
            problem = _exit_value_problem(meta["exit_value"], column, columns[column], obj, fixed)
            if problem:
                raise DeclarationError(f"sync model {name}: column {column}: meta.exit_value {problem}")
    return column_meta


def _event_options(sync: dict, columns: dict[str, str], fail) -> EventOptions:
    from sinks.destinations.base import column_kind

    names = {"event_name": sync.get("event_name", "event_name"), "event_time": sync.get("event_time", "occurred_at")}
    for option, column in names.items():
        if column not in columns:
            raise fail(f"{option} names column {column!r}, which the model does not declare (columns: {', '.join(columns)})")
    if column_kind(columns[names["event_time"]]) not in ("timestamp", "number"):
        raise fail(f"event_time column {names['event_time']!r} is {columns[names['event_time']]!r}; expected a "
                   "timestamp or Unix seconds")
    consent = sync.get("consent")
    if consent is not None and (consent not in columns or column_kind(columns[consent]) != "boolean"):
        raise fail(f"consent is {consent!r}; expected a boolean column of the model")
    backfill = sync.get("backfill", "none")
    return EventOptions(
        name_column=names["event_name"], time_column=names["event_time"],
        max_age_s=_interval(sync.get("max_event_age"), "max_event_age", fail),
        backfill_s=0.0 if backfill == "none" else None if backfill == "all" else _interval(backfill, "backfill", fail),
        consent_column=consent)


def _interval(value, option: str, fail) -> float | None:
    """'45 minutes', '2 hours', '30 days' as seconds."""
    if value is None:
        return None
    parts = str(value).split()
    unit = parts[1].rstrip("s") if len(parts) == 2 else ""
    if len(parts) != 2 or not parts[0].isdigit() or unit not in INTERVAL_UNITS:
        expected = "'<n> minutes|hours|days'" + (", none or all" if option == "backfill" else "")
        raise fail(f"{option} is {value!r}; expected {expected}")
    return float(int(parts[0]) * INTERVAL_UNITS[unit])


# The JSON values a column's exit_value may take, by the column's kind (sinks.destinations.base.column_kind).
_EXIT_TYPES = {"string": str, "date": str, "timestamp": str, "boolean": bool, "number": (int, float)}


def _exit_value_problem(value, column: str, data_type: str, obj: str, fixed: list[str]) -> str | None:
    from sinks.destinations.base import column_kind

    if obj != "attributes" or column in fixed:
        return "applies to the attribute columns of an attributes sync only"
    kind = column_kind(data_type) or ""
    expected = list if kind.startswith("list ") else _EXIT_TYPES.get(kind)
    if value is None:
        return "is null: leave it out to clear the value on exit"
    if expected is None or not isinstance(value, expected) or (expected != bool and isinstance(value, bool)):
        return f"is {value!r}, which does not fit the column's type {data_type!r}"
    return None
