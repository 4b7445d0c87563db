"""Reading fields out of decoded ECS documents the way Elasticsearch indexes them.

A field may be written nested (``{"process": {"parent": {"args": [...]}}}``), dotted
(``{"process.parent.args": [...]}``) or any mix (``{"process": {"parent.args": [...]}}``); a document
holding several forms has all their values. Arrays of objects and nested arrays flatten, ``null``
elements vanish, and an object where a value is expected is not a value.

:func:`flatten` walks a document once into ``dotted path -> leaf values`` (the form Elasticsearch
indexes), so reading many fields costs one pass over the document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["FieldSet", "Flat", "as_keyword", "field_values", "flatten", "keyword_values", "single_keyword"]

Flat = dict[str, list[Any]]


class FieldSet:
    """The paths a reader needs, with every proper prefix, so :func:`flatten` can skip the rest."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = frozenset(paths)
        self.prefixes = frozenset(p.rsplit(".", i)[0] for p in self.paths for i in range(1, p.count(".") + 1))


def flatten(doc: Mapping[str, Any], fields: FieldSet | None = None) -> Flat:
    """Leaf values of ``doc`` under their dotted paths (only ``fields``' paths when given).

    Iterative, so attacker-shaped nesting costs no recursion.
    """
    flat: Flat = {}
    stack: list[tuple[str, Any]] = [(key, doc[key]) for key in reversed(list(doc))]
    while stack:
        path, node = stack.pop()
        if fields is not None and path not in fields.paths:
            if path not in fields.prefixes:
                continue
            if isinstance(node, dict):
                stack.extend((f"{path}.{key}", node[key]) for key in reversed(list(node)))
            elif isinstance(node, list):
                stack.extend((path, item) for item in reversed(node))
            continue
        if isinstance(node, dict):
            if fields is None or path in fields.prefixes:  # an object is no value, but may hold wanted paths
                stack.extend((f"{path}.{key}", node[key]) for key in reversed(list(node)))
        elif isinstance(node, list):
            stack.extend((path, item) for item in reversed(node))
        elif node is not None:
            flat.setdefault(path, []).append(node)
    return flat


def _flat(doc: Mapping[str, Any] | Flat, flat: bool) -> Mapping[str, Any]:
    return doc if flat else flatten(doc)


def field_values(doc: Mapping[str, Any], path: str, *, flat: bool = False) -> list[Any]:
    """Every leaf value at ``path`` (dot-separated), flattened. ``flat``: ``doc`` is a :func:`flatten` result."""
    values: list[Any] = _flat(doc, flat).get(path, [])
    return values


def as_keyword(value: Any) -> str | None:
    """A JSON scalar as a ``keyword`` field indexes it (numbers and booleans become text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return None


def keyword_values(doc: Mapping[str, Any], path: str, *, flat: bool = False) -> tuple[str, ...]:
    """All values at ``path`` as keyword strings; empty when the field is absent, null or ``[]``."""
    values = (as_keyword(v) for v in field_values(doc, path, flat=flat))
    return tuple(v for v in values if v is not None)


def single_keyword(doc: Mapping[str, Any], path: str, *, flat: bool = False) -> str | None:
    """The field's value when it holds exactly one distinct keyword value, else ``None``.

    Used for join keys and identities: an array of several different ids identifies nothing.
    """
    values = set(keyword_values(doc, path, flat=flat))
    if len(values) != 1:
        return None
    return values.pop()
