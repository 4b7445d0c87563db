"""The seed rule's stages over typed events: a stage's compiled predicate (:mod:`shellwatch.eql.compile`, the
rule's query with Elasticsearch's semantics, DESIGN §3) on the event's flattened fields, and what held.

:func:`holds` applies the predicate. :func:`explain` gives one clause per field the stage's condition reads, in
query order, naming the field and the value(s) the event had there as received, in JSON (``null`` when none):
``process.executable = "/usr/lib/jvm/jdk-17/bin/java"``, ``process.parent.args = ["java","-jar","app.jar"]``;
the correlator asks for them only for the events of a completed sequence (the alert's
``detection.explanation.clauses``). Bounded: a string beyond :data:`MAX_TEXT` characters and a list beyond
:data:`MAX_VALUES` values are cut, saying how much was left out. :func:`stage_clauses` is both at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import orjson

from shellwatch.ecs.events import BundledEvent
from shellwatch.eql.compile import CompiledStage

__all__ = ["MAX_TEXT", "MAX_VALUES", "explain", "holds", "stage_clauses"]

MAX_TEXT: Final = 256
MAX_VALUES: Final = 16


def holds(stage: CompiledStage, event: BundledEvent) -> bool:
    """Whether ``event`` satisfies ``stage``."""
    return stage.predicate(event.flat)


def explain(stage: CompiledStage, event: BundledEvent) -> tuple[str, ...]:
    """The clauses of ``stage`` for ``event``: each field it reads, with the event's values."""
    flat = event.flat
    return tuple([f"{path} = {_values(flat.get(path, ()))}" for path in stage.reads])


def stage_clauses(stage: CompiledStage, event: BundledEvent) -> tuple[str, ...] | None:
    """The clauses of ``stage`` for ``event`` when it satisfies the stage, else ``None``."""
    return explain(stage, event) if holds(stage, event) else None


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # integers beyond 64 bits, lone surrogates
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _value(value: Any) -> str:
    if type(value) is str and len(value) > MAX_TEXT:
        return _json(value[:MAX_TEXT])[:-1] + f'...(+{len(value) - MAX_TEXT} characters)"'
    return _json(value)


def _values(values: Sequence[Any]) -> str:
    if not values:
        return "null"
    if len(values) == 1:
        return _value(values[0])
    if len(values) <= MAX_VALUES and not any(type(v) is str and len(v) > MAX_TEXT for v in values):
        return _json(values)
    shown = [_value(v) for v in values[:MAX_VALUES]]
    if len(values) > MAX_VALUES:
        shown.append(f"...(+{len(values) - MAX_VALUES} values)")
    return "[" + ",".join(shown) + "]"
