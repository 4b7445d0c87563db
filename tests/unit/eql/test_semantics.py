"""Compiled predicates against documents: Elasticsearch's case, array, null, wildcard, number and cidrmatch rules."""

from __future__ import annotations

from typing import Any

import pytest

from shellwatch.eql.compile import compile_query
from shellwatch.eql.parse import parse_query


def holds(condition: str, doc: dict[str, Any]) -> bool:
    compiled = compile_query(parse_query(f"any where {condition}"))
    return compiled.matching_stages(doc) == (0,)


CASES: list[tuple[str, dict[str, Any], bool]] = [
    # case: == / in / like are case-sensitive; : / in~ / like~ are not
    ('a == "Bash"', {"a": "Bash"}, True),
    ('a == "Bash"', {"a": "bash"}, False),
    ('a in ("x", "Bash")', {"a": "BASH"}, False),
    ('a in~ ("x", "Bash")', {"a": "bASH"}, True),
    ('a in~ ("b*")', {"a": "bash"}, False),  # in~ has no wildcards
    ('a : "bash"', {"a": "BASH"}, True),
    ('a : "/usr/lib/jvm/*"', {"a": "/USR/LIB/JVM/x"}, True),
    ('a like "/usr/*"', {"a": "/USR/x"}, False),
    ('a like~ "/usr/*"', {"a": "/USR/x"}, True),
    ('a : "s"', {"a": "\u017f"}, False),  # no Unicode folding beyond single-code-point case forms
    ('startsWith(a, "Ba")', {"a": "bash"}, False),
    ('startsWith~(a, "Ba")', {"a": "bash"}, True),
    ('endsWith~(a, ".JAR")', {"a": "x.jar"}, True),
    ('stringContains(a, "*")', {"a": "x*y"}, True),  # function arguments are literal
    ('stringContains(a, "*")', {"a": "xy"}, False),
    # wildcards: * any run incl. empty and "/", ? exactly one, backslash literal
    ('a : "/usr/lib/jvm/*"', {"a": "/usr/lib/jvm/"}, True),
    ('a : "/usr/lib/jvm/*"', {"a": "/usr/lib/jvm"}, False),
    ('a : "a?c"', {"a": "abc"}, True),
    ('a : "a?c"', {"a": "ac"}, False),
    ('a : "C:\\\\Windows\\\\*"', {"a": "c:\\windows\\x.exe"}, True),
    ('a : "a.c"', {"a": "abc"}, False),
    # arrays: any element, a scalar is a one-element array, nested and dotted forms mixed
    ('a : "-jar"', {"a": ["java", "-JAR", "x.jar"]}, True),
    ('a : "-jar"', {"a": ["java -jar x.jar"]}, False),
    ('not a in ("x")', {"a": ["y", "x"]}, False),
    ('not a in ("x")', {"a": ["y"]}, True),
    ('not a in ("x")', {}, True),
    ("a.b == 1", {"a": {"b": [2, 1]}}, True),
    ('a.b == "x"', {"a.b": "y", "a": {"b": "x"}}, True),
    ('a.b.c == "x"', {"a": {"b.c": ["x"]}}, True),
    ('a.b == "x"', {"a": [{"b": "y"}, {"b": "x"}]}, True),
    ("length(a) == 3", {"a": ["ab", "abc"]}, True),
    # null: absent, JSON null and [] are null; any other comparison on null fails; not is the complement
    ("a == null", {}, True),
    ("a == null", {"a": None}, True),
    ("a == null", {"a": []}, True),
    ("a == null", {"a": [None]}, True),
    ("a != null", {"a": ""}, True),
    ('a != "x"', {}, True),
    ('a == "x"', {}, False),
    ('a : "*"', {}, False),
    ('not a : "*"', {}, True),
    ("a < 3", {}, False),
    ('a != "x"', {"a": ["x", "y"]}, False),
    # numbers and booleans
    ("a == 3", {"a": "3"}, True),
    ('a == "3"', {"a": 3}, True),
    ("a >= 3", {"a": [1, 5]}, True),
    ("a > 3", {"a": "10"}, True),
    ('a > "3"', {"a": "10"}, False),  # strings compare by code point
    ("a == true", {"a": True}, True),
    ("a == true", {"a": "true"}, True),
    ("a == false", {"a": True}, False),
    ("a", {"a": True}, True),
    ("a", {"a": "x"}, False),
    # ip fields: a non-address is null; IPv4-mapped IPv6 is IPv4; equality compares addresses
    ("destination.ip == null", {"destination": {"ip": "not-an-ip"}}, True),
    ('destination.ip == "0.0.0.0"', {"destination": {"ip": "::ffff:0.0.0.0"}}, True),
    ('source.ip == "::1"', {"source": {"ip": "0:0:0:0:0:0:0:1"}}, True),
    # cidrmatch: IPv4, IPv6, mapped, bare addresses; a non-address is null
    ('cidrmatch(destination.ip, "10.0.0.0/8")', {"destination": {"ip": "10.1.2.3"}}, True),
    ('cidrmatch(destination.ip, "10.0.0.0/8")', {"destination": {"ip": "::ffff:10.1.2.3"}}, True),
    ('cidrmatch(destination.ip, "FE80::/10")', {"destination": {"ip": "fe80::1"}}, True),
    ('cidrmatch(destination.ip, "::1")', {"destination": {"ip": "::1"}}, True),
    ('cidrmatch(destination.ip, "::1")', {"destination": {"ip": "::2"}}, False),
    ('cidrmatch(destination.ip, "10.0.0.0/8")', {"destination": {"ip": ["8.8.8.8", "10.0.0.1"]}}, True),
    ('cidrmatch(x, "10.0.0.0/8")', {"x": "010.0.0.1"}, False),
    ('not cidrmatch(x, "10.0.0.0/8")', {"x": "not-an-ip"}, True),
    ('cidrmatch(x, "10.0.0.0/8") == null', {"x": "not-an-ip"}, True),
    ('cidrmatch(x, "10.0.0.0/8") == false', {"x": "8.8.8.8"}, True),
    # the membership fast paths (a string that reads as no number, boolean or address) keep the rules above
    ('a == "x"', {"a": ["y", "x"]}, True),
    ('a == "x"', {"a": [1, True, "X"]}, False),
    ('a != "x"', {"a": [1, "y"]}, True),
    ('a in ("x", "y")', {"a": [2, "y"]}, True),
    ('a in ("x", "y")', {"a": [True, 0.5]}, False),
    ('a in ("x", "3")', {"a": 3}, True),  # "3" reads as a number: no fast path
    ('a in ("x", "true")', {"a": True}, True),
    ('a in ("x", "10.0.0.1")', {"a": "10.0.0.1"}, True),
    ('a == "10.0.0.1"', {"a": "10.0.0.1"}, True),
    ('destination.ip == "not-an-ip"', {"destination": {"ip": "not-an-ip"}}, False),
    ('destination.ip != "not-an-ip"', {"destination": {"ip": "not-an-ip"}}, True),
    ('destination.ip != "10.0.0.1"', {"destination": {"ip": ["10.0.0.2", "::ffff:10.0.0.1"]}}, False),
    ('destination.ip == "::1"', {"destination": {"ip": "0.0.0.1"}}, False),  # another family
    ('startsWith(x, "10.")', {"x": "10.1.2.3"}, True),
    ('not startsWith(x, "10.")', {}, True),
    ('cidrmatch(x, "10.0.0.0/8")', {"x": ["junk", "10.9.9.9"]}, True),
    # and / or / not
    ('a == "x" and (b == "y" or not c == "z")', {"a": "x", "c": "q"}, True),
    ('a == "x" and (b == "y" or not c == "z")', {"a": "x", "c": "z"}, False),
]


@pytest.mark.parametrize(("condition", "doc", "expected"), CASES)
def test_semantics(condition: str, doc: dict[str, Any], expected: bool) -> None:
    assert holds(condition, doc) is expected


def test_category_is_membership_in_event_category_or_the_override() -> None:
    query = parse_query("process where true")
    assert compile_query(query).matching_stages({"event": {"category": ["network", "process"]}}) == (0,)
    assert compile_query(query).matching_stages({"event": {"category": "Process"}}) == ()
    assert compile_query(query).matching_stages({}) == ()
    override = compile_query(query, category_field="event.dataset")
    assert override.matching_stages({"event": {"dataset": "process", "category": "file"}}) == (0,)


def test_compiled_sequence_exposes_stages_keys_fields_and_host_locality() -> None:
    compiled = compile_query(
        parse_query(
            "sequence by host.id with maxspan=5s [network where a == 1] by process.entity_id "
            '[process where b : "x"] with runs=2 by process.parent.entity_id'
        )
    )
    assert compiled.sequence_keys == ("host.id",)
    assert [s.keys for s in compiled.stages] == [
        ("host.id", "process.entity_id"),
        ("host.id", "process.parent.entity_id"),
    ]
    assert [s.runs for s in compiled.stages] == [1, 2]
    assert compiled.maxspan_ms == 5000
    assert compiled.host_local
    assert compiled.fields == {"a", "b", "event.category", "host.id", "process.entity_id", "process.parent.entity_id"}


@pytest.mark.parametrize(
    ("keys", "host_local"),
    [
        ("by user.name [any where true] [any where true]", False),
        ("[any where true] by process.entity_id [any where true] by process.parent.entity_id", True),
        ("[any where true] by user.name, agent.id [any where true] by user.name, agent.id", True),
        ("[any where true] by process.entity_id [any where true] by user.name", False),
    ],
)
def test_host_locality(keys: str, host_local: bool) -> None:
    assert compile_query(parse_query(f"sequence {keys}")).host_local is host_local


def test_an_ip_fields_addresses_are_parsed_once_per_document_and_never_mixed_up() -> None:
    compiled = compile_query(parse_query('any where destination.ip == "8.8.8.8" or cidrmatch(destination.ip, "::1")'))
    (stage,) = compiled.stages
    first, second = ({"destination.ip": ["8.8.8.8"]}, {"destination.ip": ["10.0.0.1"]})
    assert [stage.predicate(f) for f in (first, second, first, {"destination.ip": ["::1"]})] == [
        True,
        False,
        True,
        True,
    ]
    same_values = {"destination.ip": ["8.8.8.8"]}  # equal to `first` but another document
    assert stage.predicate(same_values) and not stage.predicate({"destination.ip": []})
