"""sinks.destinations.base.column_kind: what a declared column type becomes in the engine's payloads.
Pure: no process, no network."""

import pytest

from sinks.destinations.base import column_kind


@pytest.mark.parametrize(("data_type", "kind"), [
    ("varchar", "string"), ("text", "string"), ("uuid", "string"), ("char", "string"),
    ("bigint", "number"), ("integer", "number"), ("hugeint", "number"), ("ubigint", "number"),
    ("double", "number"), ("real", "number"), ("decimal(18,2)", "number"), ("numeric(10, 4)", "number"),
    ("boolean", "boolean"), ("bool", "boolean"),
    ("date", "date"),
    ("timestamp", "timestamp"), ("timestamptz", "timestamp"), ("datetime", "timestamp"),
])
def test_declared_types_map_to_their_payload_kind(data_type, kind):
    assert column_kind(data_type) == kind


def test_case_and_surrounding_space_do_not_matter():
    assert column_kind("  VARCHAR ") == "string"
    assert column_kind("BigInt") == "number"


@pytest.mark.parametrize(("data_type", "kind"), [
    ("varchar[]", "list string"), ("bigint[]", "list number"), ("date[]", "list date"),
])
def test_a_list_type_is_a_list_of_its_element_kind(data_type, kind):
    assert column_kind(data_type) == kind


@pytest.mark.parametrize("data_type", ["struct(a int)", "map(varchar, int)", "blob", "interval", "geometry[]", ""])
def test_an_unknown_type_has_no_kind(data_type):
    assert column_kind(data_type) is None
