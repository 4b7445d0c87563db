"""Reading fields out of decoded ECS documents the way Elasticsearch indexes them.

A field may be written nested (``{"process": {"parent": {"args": [...]}}}``), dotted
(``{"process.parent.args": [...]}``) or any mix (``{"process": {"parent.args": [...]}}``); a document
holding several forms has all their values. Arrays of objects and nested arrays flatten, ``null``
elements vanish, and an object where a value is expected is not a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["field_values", "keyword_values", "single_keyword"]


def field_values(doc: Mapping[str, Any], path: str) -> list[Any]:
    """Every leaf value at ``path`` (dot-separated), flattened."""
    out: list[Any] = []
    _collect(doc, path.split("."), 0, out)
    return out


def _collect(node: Any, parts: list[str], index: int, out: list[Any]) -> None:
    if index == len(parts):
        _flatten_leaf(node, out)
        return
    if isinstance(node, list):
        for item in node:
            _collect(item, parts, index, out)
        return
    if not isinstance(node, dict):
        return
    key = parts[index]
    for end in range(index + 1, len(parts) + 1):
        if end > index + 1:
            key = f"{key}.{parts[end - 1]}"
        if key in node:
            _collect(node[key], parts, end, out)


def _flatten_leaf(value: Any, out: list[Any]) -> None:
    # Iterative: attacker-shaped documents may nest arrays hundreds deep.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif item is not None and not isinstance(item, dict):
            out.append(item)


def _as_keyword(value: Any) -> str | None:
    """A JSON scalar as a ``keyword`` field indexes it (numbers and booleans become text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return None


def keyword_values(doc: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """All values at ``path`` as keyword strings; empty when the field is absent, null or ``[]``."""
    values = (_as_keyword(v) for v in field_values(doc, path))
    return tuple(v for v in values if v is not None)


def single_keyword(doc: Mapping[str, Any], path: str) -> str | None:
    """The field's value when it holds exactly one distinct keyword value, else ``None``.

    Used for join keys and identities: an array of several different ids identifies nothing.
    """
    values = set(keyword_values(doc, path))
    if len(values) != 1:
        return None
    return values.pop()
