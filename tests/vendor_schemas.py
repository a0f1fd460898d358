"""The vendors' own schemas judge every request our clients send (as recorded by the emulators).

`violations(destination, requests)` returns what a vendor's schema refuses in recorded requests (see
`emulators.recording.RecordedRequest`), each naming the destination, method, path, the JSON pointer (or
query parameter) and what the schema expected. `assert_judged(servers)` is the teardown check of every
fixture that serves emulators to the real clients. The judges:

- Talon.One: the request models of the vendor's SDK (`talon-one-sdk`, module `talon_one`). Its pydantic
  models ignore unknown keys, so every key is also checked against the model's JSON (alias) names.
- Customer.io: the vendor's Track API OpenAPI, read from ../shared/specs (its licence is unknown, so it is
  not copied into the project). When it is missing the check skips loudly, and fails when `CI` is set.
- Cordial publishes no schema: `CORDIAL` below is our reading of its documentation.

Not collected by pytest (the file name does not start with test_).
"""

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, get_args

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[1]
CUSTOMERIO_SPEC = ROOT.parent / "shared" / "specs" / "customerio-track-api.openapi.json"


@dataclass(frozen=True)
class Violation:
    destination: str
    method: str
    path: str
    pointer: str  # a JSON pointer into the body ("" = the whole body), or "?<name>" for a query parameter
    expected: str

    def __str__(self) -> str:
        return f"{self.destination} {self.method} {self.path} {self.pointer or '(body)'}: {self.expected}"


def violations(destination: str, requests: Iterable[Any]) -> list[Violation]:
    judge = {"customerio": _customerio, "cordial": _cordial, "talon_one": _talon_one}[destination]
    return [Violation(destination, r.method, r.path, pointer, expected)
            for r in requests for pointer, expected in judge(r)]


def require_customerio_spec() -> None:
    """Skip (fail under CI, which always has ../shared) when the Customer.io OpenAPI is not there."""
    if CUSTOMERIO_SPEC.exists():
        return
    message = f"{CUSTOMERIO_SPEC} is missing: Customer.io requests are NOT judged against the vendor's OpenAPI"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def assert_judged(servers: Mapping[str, Any]) -> None:
    """No schema violation in any request the emulator servers (by destination name) recorded."""
    found, unjudged = [], False
    for name, server in servers.items():
        requests = server.requests
        if name == "customerio" and requests and not CUSTOMERIO_SPEC.exists():
            unjudged = True
            continue
        found += violations(name, requests)
    shown = "\n".join(map(str, found[:30]))
    assert not found, f"{len(found)} request(s) the vendors' schemas refuse:\n{shown}"
    if unjudged:
        require_customerio_spec()


# ------------------------------------------------------------------------------------------ shared pieces
@functools.cache
def _template(path: str) -> re.Pattern:
    """A path template (/v2/audiences/{audienceId}) as a pattern matching one segment per parameter."""
    return re.compile("^" + "[^/]+".join(map(re.escape, re.split(r"\{[^}]+\}", path))) + "$")


def _find(operations: Mapping[tuple[str, str], Any], method: str, path: str):
    """The operation whose method and path template match a request, or None."""
    return next((op for (m, template), op in operations.items() if m == method and _template(template).match(path)),
                None)


def _schema_problems(validator: jsonschema.Draft202012Validator, value: Any, prefix: str = "") -> list[tuple]:
    problems = []
    for error in validator.iter_errors(value):
        closest = " (closest alternative)" if error.context else ""
        for leaf in _closest(error):
            problems.append((prefix + "".join(f"/{p}" for p in leaf.absolute_path), leaf.message[:300] + closest))
    return problems


def _closest(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """An anyOf/oneOf failure explained by the alternative that came closest, recursively: the fewest
    mismatched enums or consts (those pick the alternative, e.g. "action": "event"), then the fewest errors."""
    if not error.context:
        return [error]
    branches: dict[Any, list] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    explained = ([leaf for sub in subs for leaf in _closest(sub)] for subs in branches.values())
    return min(explained, key=lambda leaves: (sum(e.validator in ("enum", "const") for e in leaves), len(leaves)))


def _query_problems(given: Mapping[str, str], schemas: Mapping[str, dict]) -> list[tuple[str, str]]:
    problems = []
    for name, value in given.items():
        if name not in schemas:
            problems.append((f"?{name}", f"no such query parameter (known: {sorted(schemas)})"))
            continue
        schema = schemas[name]
        kind = schema.get("type")
        if kind == "integer" and re.fullmatch(r"-?\d+", value):
            value = int(value)
        elif kind == "boolean" and value in ("true", "false"):
            value = value == "true"
        problems += _schema_problems(jsonschema.Draft202012Validator(schema), value, f"?{name}")
    return problems


def _judge(operations: Mapping[tuple[str, str], tuple[Any, dict]], r, vendor: str) -> list[tuple[str, str]]:
    """Judge one request by its operation: (check of the body, or None if it takes none; query schemas)."""
    operation = _find(operations, r.method, r.path)
    if operation is None:
        return [("", f"no such operation in {vendor}")]
    check, query = operation
    problems = _query_problems(r.query, query)
    if check is None:
        return problems + ([] if r.body is None else [("", "no body: this operation takes none")])
    return problems + (check(r.body) if r.body is not None else [("", "a JSON body")])


def _json_schema(schema: dict):
    return functools.partial(_schema_problems, jsonschema.Draft202012Validator(schema))


# ------------------------------------------------------------------------------------------ Talon.One
def _talon_one(r) -> list[tuple[str, str]]:
    return _judge(_talon_operations(), r, "the Talon.One SDK's Integration or Management API")


@functools.cache
def _talon_operations() -> dict[tuple[str, str], tuple[Any, dict]]:
    from talon_one import models  # a test-only dependency, and a slow import: only when Talon.One is judged

    def body(model):
        return functools.partial(_model_problems, model, pointer="")

    yes_no, boolean, text = {"enum": ["yes", "no"]}, {"type": "boolean"}, {"type": "string"}
    paging = {"pageSize": {"type": "integer", "minimum": 1, "maximum": 1000}, "skip": {"type": "integer"}, "sort": text}
    attribute_filters = {k: text for k in ("entity", "applicationIds", "type", "kind", "search")}
    return {  # (check of the body, query parameters), from the SDK's IntegrationApi and ManagementApi
        ("PUT", "/v2/customer_profiles"): (body(models.MultipleCustomerProfileIntegrationRequest), {"silent": yes_no}),
        ("PUT", "/v2/customer_profiles/{integrationId}"):
            (body(models.CustomerProfileIntegrationRequestV2), {"runRuleEngine": boolean, "dry": boolean}),
        ("POST", "/v2/audiences"): (body(models.NewAudience), {}),
        ("PUT", "/v2/audiences/{audienceId}"): (body(models.UpdateAudience), {}),
        ("DELETE", "/v2/audiences/{audienceId}"): (None, {}),
        ("DELETE", "/v2/audiences/{audienceId}/memberships"): (None, {}),
        ("POST", "/v2/customer_audiences"): (body(models.CustomerProfileAudienceRequest), {}),
        ("POST", "/v2/events"): (body(models.IntegrationEventV2Request), {}),
        ("POST", "/v1/attributes"): (body(models.NewAttribute), {}),
        # IntegrationApi.get_customer_inventory (the preflight's probe of the integration key)
        ("GET", "/v1/customer_profiles/{integrationId}/inventory"): (None, {
            k: boolean for k in ("profile", "referrals", "coupons", "loyalty", "giveaways", "achievements")}),
        ("GET", "/v1/attributes"): (None, {**paging, **attribute_filters}),
        ("GET", "/v1/audiences"): (None, {**paging, "withTotalResultSize": boolean}),
        # ManagementApi.get_application_events_without_total_count
        ("GET", "/v1/applications/{applicationId}/events/no_total"): (None, {
            **paging, "profile": text, "type": text, "createdAfter": {"type": "string", "format": "date-time"},
            "createdBefore": {"type": "string", "format": "date-time"}, "session": text}),
    }


def _model_problems(model, body: Any, pointer: str) -> list[tuple[str, str]]:
    """What the SDK model refuses in `body` (validated by its JSON names), plus keys it does not know."""
    from pydantic import ValidationError

    if not isinstance(body, dict):
        return [(pointer, f"a JSON object ({model.__name__})")]
    problems = []
    try:
        model.model_validate(body)
    except ValidationError as err:
        problems += [(pointer + "".join(f"/{p}" for p in e["loc"]), f"{e['msg']} ({model.__name__})")
                     for e in err.errors()]
    return problems + _unknown_keys(model, body, pointer)


def _unknown_keys(model, body: Any, pointer: str) -> list[tuple[str, str]]:
    if not isinstance(body, dict):
        return []  # the model's validation has said so
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    problems = []
    for key, value in body.items():
        if key not in fields:
            problems.append((f"{pointer}/{key}", f"no such field in {model.__name__} (fields: {sorted(fields)})"))
        elif (model.__name__, key) in TYPED_AS_ANY and value is not None:
            from talon_one import models

            documented = getattr(models, TYPED_AS_ANY[model.__name__, key])
            problems += _model_problems(documented, value, f"{pointer}/{key}")
        elif (inner := _model_in(fields[key].annotation)) is not None:
            for i, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
                problems += _unknown_keys(inner, item, f"{pointer}/{key}" + ("" if i is None else f"/{i}"))
    return problems


# Fields the SDK types as Any, by the model the API documents for them.
TYPED_AS_ANY = {("CustomerProfileIntegrationRequestV2", "audiencesChanges"): "ProfileAudiencesChanges"}


def _model_in(annotation) -> type | None:
    """The pydantic model inside an annotation such as Optional[List[Model]], if any."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in get_args(annotation) if (m := _model_in(a)) is not None), None)


# ------------------------------------------------------------------------------------------ Customer.io
# The Track API OpenAPI does not cover the App API, which setup uses to list and create manual segments.
# Our reading of ../shared/destinations.md §1.2 (shape from a third-party scaffold of the App API spec):
CUSTOMERIO_APP_API = {
    ("GET", "/v1/segments"): (None, {}),
    ("GET", "/v1/segments/{segment_id}"): (None, {}),
    ("POST", "/v1/segments"): (_json_schema({
        "type": "object", "required": ["segment"], "additionalProperties": False,
        "properties": {"segment": {
            "type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "description": {"type": "string"}}}},
    }), {}),
}  # fmt: skip


def _customerio(r) -> list[tuple[str, str]]:
    return _judge(_customerio_operations(), r, "Customer.io's Track API OpenAPI or the App API routes we know")


@functools.cache
def _customerio_operations() -> dict[tuple[str, str], tuple[Any, dict]]:
    """(check of the JSON request body, query parameter schemas) by (method, path template)."""
    spec = json.loads(CUSTOMERIO_SPEC.read_text())
    registry = Registry().with_resource("urn:cio", Resource.from_contents(spec, default_specification=DRAFT202012))

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = registry.resolver().lookup(f"urn:cio{node['$ref']}").contents
        return node

    def escape(part: str) -> str:
        return part.replace("~", "~0").replace("/", "~1")

    operations = dict(CUSTOMERIO_APP_API)
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            parameters = [resolve(p) for p in item.get("parameters", []) + op.get("parameters", [])]
            query = {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "query"}
            check = None
            if "application/json" in resolve(op.get("requestBody", {})).get("content", {}):
                pointer = f"/paths/{escape(path)}/{method}/requestBody/content/application~1json/schema"
                validator = jsonschema.Draft202012Validator({"$ref": f"urn:cio#{pointer}"}, registry=registry)
                check = functools.partial(_schema_problems, validator)
            operations[method.upper(), path] = (check, query)
    return operations


# ------------------------------------------------------------------------------------------ Cordial
# Cordial publishes no schema. This is OUR READING of its documentation (../shared/destinations.md §2), not a
# vendor file: the documented fields of each body, and nothing else where the documentation names the whole
# body. Contact attributes and list flags are top-level keys the account defines, so only the documented
# control keys are checked in a contact; the emulator checks the rest against its attribute registry.
_CONTACT = {
    "type": "object",
    "properties": {
        "channels": {
            "type": "object",
            "properties": {"email": {
                "type": "object", "additionalProperties": False,
                "properties": {"address": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
                               "subscribeStatus": {"enum": ["subscribed", "unsubscribed", "none"]},
                               "invalid": {"type": "boolean"}}}},
            "additionalProperties": {"type": "object"},  # other channels (sms, push) have their own keys
        },
        "forceSubscribe": {"type": "boolean"},
        "suppressTriggers": {"type": "boolean"},
        "identifyBy": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
}  # fmt: skip
CORDIAL = {  # (method, path template): (check of the body or None, query parameter schemas)
    ("POST", "/v2/contacts"): (_json_schema({**_CONTACT, "anyOf": [  # a create needs the primary key, or identifyBy
        {"required": ["channels"], "properties": {"channels": {
            "required": ["email"], "properties": {"email": {"required": ["address"]}}}}},
        {"required": ["identifyBy"]}]}), {}),
    ("PUT", "/v2/contacts/{key}"): (_json_schema(_CONTACT), {}),
    # rudder-transformer's Cordial destination (CordialTrackConfig.json, procWorkflow.yaml): email or cID, a
    # (required), properties, ats.
    ("POST", "/v2/contactactivities"): (_json_schema({
        "type": "object", "additionalProperties": False, "required": ["a"],
        "oneOf": [{"required": ["email"]}, {"required": ["cID"]}],
        "properties": {"email": {"type": "string"}, "cID": {"type": "string"}, "a": {"type": "string", "minLength": 1},
                       "properties": {"type": "object"}, "ats": {"type": "string", "format": "date-time"}}}), {}),
    ("GET", "/v2/contacts/{key}"): (None, {}),
    ("DELETE", "/v2/contacts/{key}"): (None, {}),
    ("PUT", "/v2/contacts/{key}/unsubscribe/{channel}"): (None, {}),
    ("GET", "/v2/accountcontactattributes"): (None, {}),
    # Types: string, number, date are documented; geo, array, boolean are mentioned without confirmation.
    ("POST", "/v2/accountcontactattributes"): (_json_schema({
        "type": "object", "required": ["key", "type"], "additionalProperties": False,
        "properties": {"key": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
                       "type": {"enum": ["string", "number", "date", "geo", "array", "boolean"]}}}), {}),
    ("GET", "/v2/accountlists"): (None, {"name": {"type": "string"}}),
    ("POST", "/v2/accountlists"): (_json_schema({
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1}, "enhanced": {"type": "boolean"}}}), {}),
    ("GET", "/v2/accountlists/{id}"): (None, {}),
    ("GET", "/v2/accountlists/{id}/count"): (None, {}),
    ("PUT", "/v2/accountlists/{id}/clear"): (None, {}),
    ("DELETE", "/v2/accountlists/{id}"): (None, {}),
    ("POST", "/v2/contactimports"): (_json_schema({
        "type": "object", "required": ["source"], "additionalProperties": False,
        "properties": {
            "source": {"type": "object", "required": ["url"], "additionalProperties": False,
                       "properties": {"transport": {"type": "string"}, "url": {"type": "string", "minLength": 1}}},
            "subscribe": {"type": "boolean"}}}), {}),
    ("GET", "/v2/jobs/{id}"): (None, {}),
}  # fmt: skip


def _cordial(r) -> list[tuple[str, str]]:
    return _judge(CORDIAL, r, "Cordial's documented REST API v2")
