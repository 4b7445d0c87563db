"""From the AST to predicates over a flattened ECS document (:func:`shellwatch.ecs.fields.flatten`).

Each expression compiles once into a closure; per document the work is dictionary lookups and, for
``:``/``like``/``in~``, one combined regex per clause. Value semantics are those of :mod:`.values`.

A :class:`CompiledQuery` exposes what an engine needs: its stages (category or ``any``, predicate, join key
fields, ``runs``), the sequence's own keys, ``maxspan_ms``, the fields the rule reads (to flatten only those)
and whether the join is host-local.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from shellwatch.eql.functions import Getter, Predicate, call_test, call_values
from shellwatch.eql.values import (
    Value,
    as_text,
    equals_literal,
    ip_field_values,
    is_ip_field,
    is_plain_text,
    ordered,
    text_test,
    values_equal,
)
from shellwatch.match.comparisons import parse_ip, pattern_regex

__all__ = ["CATEGORY_FIELD", "CompiledQuery", "CompiledStage", "Predicate", "compile_query"]

CATEGORY_FIELD: Final = "event.category"
# Join fields whose value identifies something on one host only: a key tuple holding one of these at the
# same position in every stage never pairs events of two hosts (Elastic Defend's entity ids are unique).
HOST_FIELDS: Final = frozenset({"host.id", "agent.id"})


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
            return ip_field_values(path)
        return lambda flat: flat.get(path, ())
    if isinstance(expr, Literal):
        constant: tuple[Value, ...] = () if expr.value is None else (expr.value,)
        return lambda flat: constant
    if isinstance(expr, Call):
        return call_values(expr, _getter(expr.args[0]))
    test = predicate(expr)
    return lambda flat: (test(flat),)


def _plain_field(expr: Expr) -> str | None:
    """The path of a field whose values are compared as read (not an ip field), else ``None``."""
    return expr.path if isinstance(expr, Field) and not is_ip_field(expr.path) else None


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
        if op in ("==", "!=") and isinstance(left, Field) and is_ip_field(left.path) and isinstance(literal, str):
            address, addresses = parse_ip(literal), ip_field_values(left.path)  # an ip field's values are addresses
            if address is None:
                return lambda flat: op == "!="
            if op == "==":
                return lambda flat: address in addresses(flat)
            return lambda flat: address not in addresses(flat)
        if op in ("==", "!="):
            path = _plain_field(left)
            if path is not None and isinstance(literal, str) and is_plain_text(literal):
                text = literal  # only that very string equals it: list membership
                if op == "==":
                    return lambda flat: text in flat.get(path, ())
                return lambda flat: text not in flat.get(path, ())
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
        test = text_test(regex)
        return lambda flat: test(values(flat))
    strings = frozenset(v for v in items if isinstance(v, str))
    path = _plain_field(expr.value)
    if path is not None and all(isinstance(v, str) and is_plain_text(v) for v in items):
        return lambda flat: not strings.isdisjoint(flat.get(path, ()))  # only those very strings are members
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
    test = text_test(regex)
    return lambda flat: test(values(flat))


def predicate(expr: Expr) -> Predicate:
    """Compile a condition; a bare value holds when any of its values is ``true``."""
    if isinstance(expr, And):
        parts = [predicate(e) for e in expr.operands]

        def all_of(flat: Flat) -> bool:
            for part in parts:  # noqa: SIM110 - a loop makes no generator per call: half the cost of all()
                if not part(flat):
                    return False
            return True

        return all_of
    if isinstance(expr, Or):
        parts = [predicate(e) for e in expr.operands]

        def any_of(flat: Flat) -> bool:
            for part in parts:  # noqa: SIM110 - as all_of
                if part(flat):
                    return True
            return False

        return any_of
    if isinstance(expr, Not):
        inner = predicate(expr.operand)
        return lambda flat: not inner(flat)
    if isinstance(expr, Compare):
        return _compare(expr)
    if isinstance(expr, InSet):
        return _in(expr)
    if isinstance(expr, Wildcard):
        return _wildcard(expr)
    if isinstance(expr, Call) and expr.name != "length":
        return call_test(expr, _getter(expr.args[0]))
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
