"""From the AST to predicates over a flattened ECS document (:func:`shellwatch.ecs.fields.flatten`).

Each expression compiles once into a closure; per document the work is dictionary lookups and, for
``:``/``like``/``in~``, one combined regex per clause. Value semantics are those of :mod:`.values`.

A :class:`CompiledQuery` exposes what an engine needs: its stages (category or ``any``, predicate, join key
fields, ``runs``), the sequence's own keys, ``maxspan_ms``, the fields the rule reads (to flatten only those)
and whether the join is host-local.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Final

from shellwatch.ecs.fields import FieldSet, Flat, flatten
from shellwatch.eql.ast import (
    And,
    Call,
    Compare,
    EventQuery,
    Expr,
    Field,
    InSet,
    Literal,
    Not,
    Or,
    Query,
    Wildcard,
)
from shellwatch.eql.ast import (
    Sequence as SequenceQuery,
)
from shellwatch.eql.values import Value, as_text, equals_literal, ip_values, is_ip_field, ordered, values_equal
from shellwatch.match.comparisons import IpAddress, IpRanges, parse_ip, pattern_regex

__all__ = ["CATEGORY_FIELD", "CompiledQuery", "CompiledStage", "Predicate", "compile_query"]

CATEGORY_FIELD: Final = "event.category"
# Join fields whose value identifies something on one host only: a key tuple holding one of these at the
# same position in every stage never pairs events of two hosts (Elastic Defend's entity ids are unique).
HOST_FIELDS: Final = frozenset({"host.id", "agent.id"})

Values = Sequence[Value]
Getter = Callable[[Flat], Values]
Predicate = Callable[[Flat], bool]


def _fields_of(expr: Expr) -> dict[str, None]:
    """The fields ``expr`` reads, in the order they first appear (a dict as an ordered set)."""
    if isinstance(expr, Field):
        return {expr.path: None}
    if isinstance(expr, Literal):
        return {}
    children: tuple[Expr, ...]
    if isinstance(expr, Call):
        children = expr.args
    elif isinstance(expr, Compare):
        children = (expr.left, expr.right)
    elif isinstance(expr, InSet | Wildcard):
        children = (expr.value,)
    elif isinstance(expr, Not):
        children = (expr.operand,)
    else:
        children = expr.operands
    fields: dict[str, None] = {}
    for child in children:
        fields.update(_fields_of(child))
    return fields


def _getter(expr: Expr) -> Getter:
    if isinstance(expr, Field):
        path = expr.path
        if is_ip_field(path):
            return lambda flat: ip_values(flat.get(path, ()))
        return lambda flat: flat.get(path, ())
    if isinstance(expr, Literal):
        constant: tuple[Value, ...] = () if expr.value is None else (expr.value,)
        return lambda flat: constant
    if isinstance(expr, Call):
        return _call(expr)
    test = predicate(expr)
    return lambda flat: (test(flat),)


def _text_test(regex: str) -> Callable[[Values], bool]:
    compiled = re.compile(regex, re.DOTALL)
    full = compiled.fullmatch
    return lambda values: any(full(v if isinstance(v, str) else as_text(v)) is not None for v in values)


def _bool_result(test: Callable[[Values], bool], source: Getter) -> Getter:
    def result(flat: Flat) -> tuple[bool, ...]:
        values = source(flat)
        return (test(values),) if values else ()

    return result


def _address(value: Value) -> IpAddress | None:
    if isinstance(value, str):
        return parse_ip(value)
    return value if isinstance(value, IPv4Address | IPv6Address) else None


def _call(call: Call) -> Getter:
    source = _getter(call.args[0])
    if call.name == "length":
        return lambda flat: tuple(len(v) for v in source(flat) if isinstance(v, str))
    texts = [str(arg.value) for arg in call.args[1:] if isinstance(arg, Literal)]
    if call.name == "cidrmatch":
        ranges = IpRanges.parse(texts)  # checked by the parser

        def in_ranges(flat: Flat) -> tuple[bool, ...]:
            addresses = [a for a in map(_address, source(flat)) if a is not None]
            if not addresses:
                return ()  # no address at all is null: Elasticsearch never indexed a non-address
            return (any(ranges.containing(a) is not None for a in addresses),)

        return in_ranges
    body = pattern_regex(texts[0], case_insensitive=call.insensitive, wildcards=False)
    regex = {"startswith": body + ".*", "endswith": ".*" + body, "stringcontains": ".*" + body + ".*"}[call.name]
    return _bool_result(_text_test(regex), source)


def _compare(expr: Compare) -> Predicate:
    left, right, op = expr.left, expr.right, expr.op
    if isinstance(left, Literal) and not isinstance(right, Literal):
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
        left, right, op = right, left, flipped.get(op, op)  # type: ignore[assignment]
    values = _getter(left)
    if isinstance(right, Literal):
        literal = right.value
        if literal is None:
            if op not in ("==", "!="):
                return lambda flat: False
            present = op == "!="
            return lambda flat: bool(values(flat)) is present
        if op in ("==", "!="):
            equal = equals_literal(literal)
            if op == "==":
                return lambda flat: any(equal(v) for v in values(flat))
            return lambda flat: not any(equal(v) for v in values(flat))
        constant: Value = literal
        return lambda flat: any(ordered(op, v, constant) for v in values(flat))
    others = _getter(right)
    if op in ("==", "!="):
        negate = op == "!="
        return lambda flat: any(values_equal(a, b) for a in values(flat) for b in others(flat)) is not negate
    return lambda flat: any(ordered(op, a, b) for a in values(flat) for b in others(flat))


def _in(expr: InSet) -> Predicate:
    values = _getter(expr.value)
    items = [item.value for item in expr.items if item.value is not None]
    if expr.insensitive:
        texts = [v if isinstance(v, str) else as_text(v) for v in items]
        if not texts:
            return lambda flat: False
        regex = "|".join(pattern_regex(t, wildcards=False) for t in texts)
        test = _text_test(regex)
        return lambda flat: test(values(flat))
    strings = frozenset(v for v in items if isinstance(v, str))
    tests = [equals_literal(v) for v in items]

    def member(flat: Flat) -> bool:
        for v in values(flat):
            if type(v) is str and v in strings:
                return True
            if any(t(v) for t in tests):
                return True
        return False

    return member


def _wildcard(expr: Wildcard) -> Predicate:
    values = _getter(expr.value)
    regex = "|".join(pattern_regex(p, case_insensitive=expr.insensitive) for p in expr.patterns)
    test = _text_test(regex)
    return lambda flat: test(values(flat))


def predicate(expr: Expr) -> Predicate:
    """Compile a condition; a bare value holds when any of its values is ``true``."""
    if isinstance(expr, And):
        parts = [predicate(e) for e in expr.operands]
        return lambda flat: all(p(flat) for p in parts)
    if isinstance(expr, Or):
        parts = [predicate(e) for e in expr.operands]
        return lambda flat: any(p(flat) for p in parts)
    if isinstance(expr, Not):
        inner = predicate(expr.operand)
        return lambda flat: not inner(flat)
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, InSet):
        return _in(expr)
    if isinstance(expr, Wildcard):
        return _wildcard(expr)
    values = _getter(expr)
    return lambda flat: any(v is True for v in values(flat))


@dataclass(frozen=True, slots=True)
class CompiledStage:
    """One stage: ``category`` (``None`` for ``any``), its predicate, its join key fields, ``runs``, and the
    fields its condition reads (``reads``, in query order)."""

    category: str | None
    predicate: Predicate
    keys: tuple[str, ...]
    optional_keys: frozenset[str]
    runs: int
    reads: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    query: Query
    stages: tuple[CompiledStage, ...]
    sequence_keys: tuple[str, ...]
    maxspan_ms: int | None
    fields: frozenset[str]
    field_set: FieldSet
    host_local: bool

    @property
    def is_sequence(self) -> bool:
        return isinstance(self.query, SequenceQuery)

    def flatten(self, doc: Mapping[str, Any]) -> Flat:
        """The document's values under the fields the query reads (one pass)."""
        return flatten(doc, self.field_set)

    def matching_stages(self, doc: Mapping[str, Any]) -> tuple[int, ...]:
        """The indexes of the stages ``doc`` satisfies."""
        flat = self.flatten(doc)
        return tuple(i for i, stage in enumerate(self.stages) if stage.predicate(flat))


def _stage(query: EventQuery, keys: tuple[Field, ...], runs: int, category_field: str) -> CompiledStage:
    condition = predicate(query.condition)
    category = query.category
    if category is None:
        test = condition
    else:

        def test(flat: Flat) -> bool:
            return category in flat.get(category_field, ()) and condition(flat)

    names = tuple(k.path for k in keys)
    optional = frozenset(k.path for k in keys if k.optional)
    return CompiledStage(category, test, names, optional, runs, tuple(_fields_of(query.condition)))


def _host_local(stages: Sequence[CompiledStage]) -> bool:
    for position in range(len(stages[0].keys)):
        at = {stage.keys[position] for stage in stages}
        if all(f in HOST_FIELDS or f.endswith("entity_id") for f in at):
            return True
    return False


def compile_query(query: Query, *, category_field: str = CATEGORY_FIELD) -> CompiledQuery:
    """Compile a parsed query; ``category_field`` is the rule's ``event_category_override`` when it has one."""
    if isinstance(query, EventQuery):
        stage = _stage(query, (), 1, category_field)
        fields = set(_fields_of(query.condition)) | ({category_field} if query.category else set())
        return CompiledQuery(query, (stage,), (), None, frozenset(fields), FieldSet(fields), True)
    stages = tuple(_stage(s.query, query.keys + s.keys, s.runs, category_field) for s in query.stages)
    fields = set().union(*(_fields_of(s.query.condition) for s in query.stages))
    fields |= {key for stage in stages for key in stage.keys}
    if any(s.query.category for s in query.stages):
        fields.add(category_field)
    return CompiledQuery(
        query,
        stages,
        tuple(k.path for k in query.keys),
        query.maxspan_ms,
        frozenset(fields),
        FieldSet(fields),
        _host_local(stages),
    )
