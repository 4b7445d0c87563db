"""The EQL parser: what it accepts (into which AST) and what it refuses, with the construct and location."""

from __future__ import annotations

import pytest

from shellwatch.eql.ast import Call, Compare, EventQuery, Field, InSet, Literal, Not, Sequence, Wildcard
from shellwatch.eql.parse import parse_query
from shellwatch.errors import EqlError


def condition(text: str) -> object:
    query = parse_query(f"process where {text}")
    assert isinstance(query, EventQuery)
    return query.condition


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('a : "x*"', Wildcard(Field("a"), ("x*",), True, ":")),
        ('a like "x*"', Wildcard(Field("a"), ("x*",), False, "like")),
        ('a like~ ("x", "y")', Wildcard(Field("a"), ("x", "y"), True, "like~")),
        ('a in ("x")', InSet(Field("a"), (Literal("x"),), False)),
        ('a in~ ("x")', InSet(Field("a"), (Literal("x"),), True)),
        ('a not in ("x", 1)', Not(InSet(Field("a"), (Literal("x"), Literal(1)), False))),
        ('a not in~ ("x")', Not(InSet(Field("a"), (Literal("x"),), True))),
        ("?a.b == null", Compare("==", Field("a.b", optional=True), Literal(None))),
        ("`a-b`.`c``d` != 2.5", Compare("!=", Field("a-b.c`d"), Literal(2.5))),
        ('startsWith~(a, "x")', Call("startswith", (Field("a"), Literal("x")), True)),
        ('STRINGCONTAINS(a, "x")', Call("stringcontains", (Field("a"), Literal("x")), False)),
        ('cidrMatch(a, "10.0.0.0/8", "::1")', Call("cidrmatch", (Field("a"), Literal("10.0.0.0/8"), Literal("::1")))),
        ("length(a) >= 3", Compare(">=", Call("length", (Field("a"),)), Literal(3))),
        ('a == "q\\"\\\\\\n\\u{41}"', Compare("==", Field("a"), Literal('q"\\\nA'))),
        ('a : """C:\\Windows\\*"""', Wildcard(Field("a"), ("C:\\Windows\\*",), True, ":")),
        ("a == true // a comment\n", Compare("==", Field("a"), Literal(True))),
        ("/* block\n comment */ a < -1", Compare("<", Field("a"), Literal(-1))),
    ],
)
def test_accepts(text: str, expected: object) -> None:
    assert condition(text) == expected


def test_sequence_keys_maxspan_runs() -> None:
    query = parse_query(
        "sequence by host.id with maxspan=2m\n"
        "  [process where true] by process.entity_id\n"
        "  [network where true] with runs=3 by ?process.parent.entity_id"
    )
    assert isinstance(query, Sequence)
    assert query.keys == (Field("host.id"),)
    assert query.maxspan_ms == 120_000
    assert [s.query.category for s in query.stages] == ["process", "network"]
    assert query.stages[1].runs == 3
    assert query.stages[1].keys == (Field("process.parent.entity_id", optional=True),)


@pytest.mark.parametrize(
    ("span", "ms"), [("500ms", 500), ("5s", 5000), ("1m", 60_000), ("1h", 3_600_000), ("2d", 172_800_000)]
)
def test_maxspan_units(span: str, ms: int) -> None:
    query = parse_query(f"sequence with maxspan={span} [any where true] [any where true]")
    assert isinstance(query, Sequence)
    assert query.maxspan_ms == ms


def test_any_and_quoted_category() -> None:
    assert parse_query("any where true") == EventQuery(None, Literal(True))
    assert parse_query('"network" where true') == EventQuery("network", Literal(True))


@pytest.mark.parametrize(
    ("text", "construct", "line", "column"),
    [
        ('process where a regex "x"', "regex", 1, 17),
        ('process where a regex~ "x"', "regex", 1, 17),
        ("sample by host.id [any where true] [any where true]", "sample", 1, 1),
        ("join [any where true] [any where true]", "join", 1, 1),
        ("sequence [any where true] [any where true]\nuntil [any where true]", "until", 2, 1),
        ("sequence [any where true]\n  ![any where true]", "missing event", 2, 3),
        ("process where true | head 5", "pipe head", 1, 20),
        ('process where concat(a, b) == "x"', "function concat", 1, 15),
        ('process where\n  wildcard(a, "x")', "function wildcard", 2, 3),
        ("process where length~(a) > 1", "function length~", 1, 15),
        ("process where startsWith(a)", "function startsWith", 1, 15),
        ("process where startsWith(a, b)", "function startsWith", 1, 29),
        ('process where cidrmatch(a, "10.0.0.0/33")', "function cidrmatch", 1, 15),
        ("process where a == 'x'", "single-quoted string", 1, 20),
        ("process where a + 1 == 2", "arithmetic", 1, 17),
        ("process where a in (b)", "in with a non-constant", 1, 21),
        ("process where a = 1", "syntax", 1, 17),
        ("process where a ==", "syntax", 1, 17),
        ('process where a == "\\q"', "syntax", 1, 20),
        ("sequence with maxspan=5 [any where true] [any where true]", "syntax", 1, 23),
        ("sequence with maxspan=5s by a [any where true] by b [any where true] by b", "syntax", 1, 26),
        ("sequence [any where true] by a [any where true]", "syntax", 1, 1),
        ("sequence [any where true] by length(a) [any where true] by b", "join key expression", 1, 30),
        ("sequence [any where true]", "syntax", 1, 1),
        ("process where and", "syntax", 1, 15),
    ],
)
def test_refuses_with_construct_and_location(text: str, construct: str, line: int, column: int) -> None:
    with pytest.raises(EqlError) as raised:
        parse_query(text)
    assert (raised.value.construct, raised.value.line, raised.value.column) == (construct, line, column), raised.value


def test_runs_alone_make_a_sequence() -> None:
    query = parse_query("sequence by host.id [process where true] with runs=2")
    assert isinstance(query, Sequence)
    assert query.stages[0].runs == 2
