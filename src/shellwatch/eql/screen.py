"""What a record must hold, byte for byte, for a stage of a query to accept it: the pre-filter's patterns.

Per stage, the patterns of ONE conjunct the stage requires: a top-level ``and`` operand (the whole condition
when it is no ``and``) that is a positive ``:``, ``like`` or ``like~`` on a field, ``==`` between a field and a
string, ``in``/``in~`` of strings, or an ``or`` whose every branch gives patterns (a branch that is an ``and``
gives its chosen conjunct's). A document the stage accepts then has a value of that conjunct's field that
matches, ASCII case aside, one of its patterns, so its record holds one of the patterns' needles
(:func:`~shellwatch.match.comparisons.screen_needle`). A candidate is refused when that would not hold:

- an ECS ``ip`` field (compared as addresses: ``0:0:0:0:0:0:0:1`` in the record is ``"::1"`` to the rule);
- a pattern without a needle: only wildcards, or text that only a number or a boolean could spell (``"1*"``,
  ``"true"``: a number's text in the record need not be the text the rule reads, ``1E2`` is ``100.0``).

The choice among candidates is stated, not searched: candidates on low-cardinality enumeration fields
(``event.*``, ``host.os.*``, fields ending in ``.type``; in an ``or``, any branch on one) only when no other
candidate exists; then the candidate whose shortest needle is longest; on a tie, the first in the query.
A stage with no candidate has no screen (:attr:`StageScreen.reason` says why) and the pre-filter must then
accept every record. Pure code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from shellwatch.eql.ast import And, Compare, EventQuery, Expr, Field, InSet, Literal, Or, Query, Wildcard
from shellwatch.eql.ast import Sequence as SequenceQuery
from shellwatch.eql.values import is_ip_field
from shellwatch.match.comparisons import screen_needle

__all__ = ["QueryScreen", "StageScreen", "query_screen"]


@dataclass(frozen=True, slots=True)
class StageScreen:
    """One stage's screen: the ``fields`` of the chosen conjunct and its ``patterns`` (empty: no screen,
    ``reason`` says why)."""

    stage: int
    category: str | None
    fields: tuple[str, ...]
    patterns: tuple[str, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class QueryScreen:
    stages: tuple[StageScreen, ...]

    @property
    def patterns(self) -> tuple[str, ...] | None:
        """Every stage's patterns (a record some stage accepts matches one), or ``None`` when a stage has none."""
        if any(not stage.patterns for stage in self.stages):
            return None
        return tuple(dict.fromkeys(p for stage in self.stages for p in stage.patterns))

    @property
    def reason(self) -> str | None:
        """Why there is no screen (the first stage without one), or ``None``."""
        return next((stage.reason for stage in self.stages if stage.reason is not None), None)


class _Candidate(NamedTuple):
    fields: tuple[str, ...]
    patterns: tuple[str, ...]
    shortest: int  # length of the shortest needle

    @property
    def enumeration(self) -> bool:
        return any(_enumeration(f) for f in self.fields)


def _enumeration(path: str) -> bool:
    return path.startswith(("event.", "host.os.")) or path.endswith(".type")


def _of(field: Expr, patterns: Iterable[str]) -> _Candidate | None:
    if not isinstance(field, Field) or is_ip_field(field.path):
        return None
    patterns = tuple(patterns)
    needles = [screen_needle(p) for p in patterns]
    if not patterns or any(n is None for n in needles):
        return None
    return _Candidate((field.path,), patterns, min(len(n) for n in needles if n is not None))


def _strings(items: Iterable[Literal]) -> list[str] | None:
    """The items' strings; ``None`` when one is a number or a boolean (a null item matches nothing)."""
    strings: list[str] = []
    for item in items:
        if isinstance(item.value, str):
            strings.append(item.value)
        elif item.value is not None:
            return None
    return strings


def _candidate(expr: Expr) -> _Candidate | None:
    if isinstance(expr, Wildcard):
        return _of(expr.value, expr.patterns)
    if isinstance(expr, InSet):
        strings = _strings(expr.items)
        return None if strings is None else _of(expr.value, strings)
    if isinstance(expr, Compare) and expr.op == "==":
        field, literal = (expr.left, expr.right) if isinstance(expr.right, Literal) else (expr.right, expr.left)
        if isinstance(literal, Literal) and isinstance(literal.value, str):
            return _of(field, [literal.value])
        return None
    if isinstance(expr, Or):
        branches = [_candidate(e) for e in expr.operands]
        if any(b is None for b in branches):
            return None
        chosen = [b for b in branches if b is not None]
        return _Candidate(
            tuple(dict.fromkeys(f for b in chosen for f in b.fields)),
            tuple(dict.fromkeys(p for b in chosen for p in b.patterns)),
            min(b.shortest for b in chosen),
        )
    if isinstance(expr, And):
        return _choose([c for c in map(_candidate, expr.operands) if c is not None])
    return None


def _choose(candidates: list[_Candidate]) -> _Candidate | None:
    preferred = [c for c in candidates if not c.enumeration] or candidates
    return max(preferred, key=lambda c: c.shortest, default=None)  # max keeps the first of equals


def _stage_screen(index: int, query: EventQuery) -> StageScreen:
    chosen = _candidate(query.condition)
    if chosen is None:
        where = f"stage {index + 1} ({query.category or 'any'})"
        reason = (
            f"{where}: no conjunct it requires compares a field with strings a record must spell "
            "(a positive :, like, like~, ==, in or in~ on a non-ip field, with literal text that is not all "
            "wildcards, digits or true/false), so the pre-filter accepts every record"
        )
        return StageScreen(index, query.category, (), (), reason)
    return StageScreen(index, query.category, chosen.fields, chosen.patterns)


def query_screen(query: Query) -> QueryScreen:
    """The screen of each stage of ``query`` (an event query has one stage)."""
    stages = [s.query for s in query.stages] if isinstance(query, SequenceQuery) else [query]
    return QueryScreen(tuple(_stage_screen(i, q) for i, q in enumerate(stages)))
