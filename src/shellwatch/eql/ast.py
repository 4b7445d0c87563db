"""The typed syntax tree of an EQL query (frozen nodes; ``line``/``column`` where a node came from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal as Lit

__all__ = [
    "And",
    "Call",
    "Compare",
    "CompareOp",
    "EventQuery",
    "Expr",
    "Field",
    "FunctionName",
    "InSet",
    "Literal",
    "Not",
    "Or",
    "Query",
    "Scalar",
    "Sequence",
    "Stage",
    "Wildcard",
    "WildcardOperator",
]

Scalar = str | int | float | bool | None
CompareOp = Lit["==", "!=", "<", "<=", ">", ">="]
WildcardOperator = Lit[":", "like", "like~"]
FunctionName = Lit["cidrmatch", "startswith", "endswith", "stringcontains", "length"]


@dataclass(frozen=True, slots=True)
class Field:
    """A field path (dots join the parts); ``optional`` for ``?field``."""

    path: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``insensitive`` for the ``~`` variants (``startsWith~``)."""

    name: FunctionName
    args: tuple[Expr, ...]
    insensitive: bool = False


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class InSet:
    """``value in (...)`` (``insensitive`` for ``in~``); ``not in`` is ``Not(InSet(...))``."""

    value: Expr
    items: tuple[Literal, ...]
    insensitive: bool


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``value : patterns`` (case-insensitive), ``like`` (case-sensitive) or ``like~``: any pattern matches.

    ``*`` any run of characters, ``?`` one character, everything else (``\\`` included) literal.
    """

    value: Expr
    patterns: tuple[str, ...]
    insensitive: bool
    operator: WildcardOperator = ":"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Field | Literal | Call | Compare | InSet | Wildcard | Not | And | Or


@dataclass(frozen=True, slots=True)
class EventQuery:
    """``<category> where <condition>``; ``category`` is ``None`` for ``any``."""

    category: str | None
    condition: Expr


@dataclass(frozen=True, slots=True)
class Stage:
    """One bracketed term of a sequence: its query, its own ``by`` keys, and ``with runs=N``."""

    query: EventQuery
    keys: tuple[Field, ...] = ()
    runs: int = 1


@dataclass(frozen=True, slots=True)
class Sequence:
    """``sequence [by keys] [with maxspan=...]`` and its stages; ``maxspan_ms`` ``None`` when unbounded."""

    keys: tuple[Field, ...]
    maxspan_ms: int | None
    stages: tuple[Stage, ...] = field(default=())


Query = EventQuery | Sequence
