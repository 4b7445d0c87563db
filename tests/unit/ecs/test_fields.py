from __future__ import annotations

from typing import Any

import pytest

from shellwatch.ecs.fields import FieldSet, field_values, flatten, keyword_values, single_keyword
from tests.unit.builders import decode


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"process": {"parent": {"args": ["a", "b"]}}}, ("a", "b")),
        ({"process.parent.args": ["a"]}, ("a",)),
        ({"process": {"parent.args": "a"}}, ("a",)),
        ({"process.parent": {"args": ["a"]}}, ("a",)),
        ({"process": {"parent": {"args": ["a"]}}, "process.parent.args": ["b"]}, ("a", "b")),
        ({"process": [{"parent": {"args": "a"}}, {"parent": {"args": "b"}}]}, ("a", "b")),
        ({"process": {"parent": {"args": [["a", ["b"]], None, "c"]}}}, ("a", "b", "c")),
        ({"process": {"parent": {"args": None}}}, ()),
        ({"process": {"parent": {"args": []}}}, ()),
        ({"process": {"parent": {"args": {"nested": "object"}}}}, ()),
        ({"process": {"parent": {"args": [1, 2.5, True]}}}, ("1", "2.5", "true")),
        ({}, ()),
    ],
)
def test_nested_dotted_and_mixed_forms(doc: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert keyword_values(doc, "process.parent.args") == expected


def test_single_keyword_needs_one_distinct_value() -> None:
    assert single_keyword({"host": {"id": ["a", "a"]}}, "host.id") == "a"
    assert single_keyword({"host": {"id": ["a", "b"]}}, "host.id") is None
    assert (
        single_keyword({"host": {"id": 123456789012345678901234567890}}, "host.id") == "123456789012345678901234567890"
    )


def test_deeply_nested_arrays_do_not_recurse() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    assert field_values({"a": deep}, "a") == ["x"]


def test_decoding_handles_big_numbers_and_both_categories() -> None:
    raw = (
        b'{"@timestamp": 1700000000000, "event": {"category": ["network", "process"], "n": 1e999999},'
        b' "host": {"id": 18446744073709551616123}}'
    )
    decoded = decode(raw)
    assert [e.kind for e in decoded.events] == ["network", "process"]
    assert decoded.events[0].host_id == "18446744073709551616123"


def test_a_wanted_path_that_prefixes_another_keeps_both() -> None:
    doc = {"process": {"parent": {"args": ["-jar"], "name": "java"}}}
    flat = flatten(doc, FieldSet(["process.parent", "process.parent.args"]))
    assert flat == {"process.parent.args": ["-jar"]}  # an object is no value of its own path
