"""The seed rule's stages over typed events: a stage's compiled predicate (:mod:`shellwatch.eql.compile`, the
rule's query with Elasticsearch's semantics, DESIGN §3) on the event's flattened fields, and what held.

:func:`stage_clauses` returns ``None`` when the event fails the stage, else one clause per field the stage's
condition reads, in query order, naming the field and the value(s) the event had there as received (``null``
when none): ``process.executable = "/usr/lib/jvm/jdk-17/bin/java"``, ``process.parent.args = ["java", "-jar",
"app.jar"]``. They become the alert's ``detection.explanation.clauses``. Bounded: a string beyond
:data:`MAX_TEXT` characters and a list beyond :data:`MAX_VALUES` values are cut, saying how much was left out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from shellwatch.ecs.events import Event
from shellwatch.eql.compile import CompiledStage

__all__ = ["MAX_TEXT", "MAX_VALUES", "stage_clauses"]

MAX_TEXT: Final = 256
MAX_VALUES: Final = 16


def stage_clauses(stage: CompiledStage, event: Event) -> tuple[str, ...] | None:
    """The clauses of ``stage`` for ``event`` when it satisfies the stage, else ``None``."""
    flat = event.flat
    if not stage.predicate(flat):
        return None
    return tuple(f"{path} = {_values(flat.get(path, ()))}" for path in stage.reads)


def _value(value: Any) -> str:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return json.dumps(value[:MAX_TEXT], ensure_ascii=False)[:-1] + f'...(+{len(value) - MAX_TEXT} characters)"'
    return json.dumps(value, ensure_ascii=False, default=str)


def _values(values: Sequence[Any]) -> str:
    if not values:
        return "null"
    if len(values) == 1:
        return _value(values[0])
    shown = [_value(v) for v in values[:MAX_VALUES]]
    if len(values) > MAX_VALUES:
        shown.append(f"...(+{len(values) - MAX_VALUES} values)")
    return "[" + ", ".join(shown) + "]"
