from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


_KEYS = st.sampled_from(["process", "parent", "args", "name", "process.parent", "parent.args", "host", "id", "x"])
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
_DOCS = st.recursive(
    _LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4), max_leaves=25
)
_PATHS = st.sets(
    st.sampled_from(["process.parent.args", "process.name", "process.parent", "host.id", "process", "x", "args"]),
    min_size=1,
)


@given(st.dictionaries(_KEYS, _DOCS, max_size=5), _PATHS)
def test_a_projected_flatten_is_the_full_flatten_restricted_to_its_paths(doc: dict[str, Any], paths: set[str]) -> None:
    """Nested and dotted keys mixed, arrays of objects and of arrays, nulls: reading only ``paths`` gives exactly
    their values, in the same order, as flattening everything does."""
    full = flatten(doc)
    assert flatten(doc, FieldSet(paths)) == {path: values for path, values in full.items() if path in paths}


def test_arrays_nested_deeper_than_the_recursion_limit_are_walked() -> None:
    deep: Any = "deep"
    for _ in range(5_000):
        deep = [deep]
    assert flatten({"process": {"args": [deep, "x"]}}, FieldSet(["process.args"])) == {"process.args": ["deep", "x"]}
