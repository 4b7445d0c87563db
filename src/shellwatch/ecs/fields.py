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

__all__ = [
    "FieldSet",
    "Flat",
    "as_keyword",
    "field_values",
    "flatten",
    "keyword_values",
    "keywords",
    "single",
    "single_keyword",
]

Flat = dict[str, list[Any]]


class FieldSet:
    """The paths a reader needs, with every proper prefix, so :func:`flatten` can skip the rest.

    ``children`` maps each prefix (``""``: the document itself) to the keys that lead from an object there to a
    wanted path or prefix, dotted keys included (under ``process``: ``parent``, ``parent.args`` ...), each with the
    full path it reaches: the walk looks each key up once and builds no path strings.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = frozenset(paths)
        self.prefixes = frozenset(p.rsplit(".", i)[0] for p in self.paths for i in range(1, p.count(".") + 1))
        wanted = self.paths | self.prefixes
        self.children: dict[str, dict[str, str]] = {
            node: {
                full[len(node) + 1 :] if node else full: full
                for full in wanted
                if not node or full.startswith(node + ".")
            }
            for node in ("", *self.prefixes)
        }


def flatten(doc: Mapping[str, Any], fields: FieldSet | None = None) -> Flat:
    """Leaf values of ``doc`` under their dotted paths (only ``fields``' paths when given), in document order.

    Without ``fields`` the walk is iterative, so attacker-shaped nesting costs no recursion; with them, it
    descends into an object only along a wanted prefix (as deep as the longest path), and arrays, however
    nested, are walked iteratively.
    """
    if fields is None:
        return _flatten_all(doc)
    flat: Flat = {}
    _collect(doc, fields.children[""], fields, flat)
    return flat


def _collect(node: Mapping[str, Any], below: dict[str, str], fields: FieldSet, flat: Flat) -> None:
    for key, value in node.items():
        path = below.get(key)
        if path is None:
            continue
        if isinstance(value, dict):
            deeper = fields.children.get(path)  # an object is no value, but may hold wanted paths
            if deeper is not None:
                _collect(value, deeper, fields, flat)
        elif isinstance(value, list):
            _collect_array(value, path, fields, flat)
        elif value is not None and path in fields.paths:
            values = flat.get(path)
            if values is None:
                flat[path] = [value]
            else:
                values.append(value)


def _collect_array(items: list[Any], path: str, fields: FieldSet, flat: Flat) -> None:
    wanted, deeper = path in fields.paths, fields.children.get(path)
    stack = [iter(items)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            if isinstance(item, dict):
                if deeper is not None:
                    _collect(item, deeper, fields, flat)
            elif item is not None and wanted:
                flat.setdefault(path, []).append(item)
        else:
            stack.pop()


def _flatten_all(doc: Mapping[str, Any]) -> Flat:
    flat: Flat = {}
    stack: list[tuple[str, Any]] = [(key, doc[key]) for key in reversed(list(doc))]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
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
    return keywords(field_values(doc, path, flat=flat))


def keywords(values: list[Any] | None) -> tuple[str, ...]:
    """Leaf values (one path's, from a :func:`flatten` result, ``None`` if absent) as keyword strings."""
    if not values:
        return ()
    if len(values) == 1:  # most fields: one value, most often text
        value = values[0]
        if type(value) is str:
            return (value,)
        keyword = as_keyword(value)
        return () if keyword is None else (keyword,)
    return tuple(k for k in map(as_keyword, values) if k is not None)


def single_keyword(doc: Mapping[str, Any], path: str, *, flat: bool = False) -> str | None:
    """The field's value when it holds exactly one distinct keyword value, else ``None``.

    Used for join keys and identities: an array of several different ids identifies nothing.
    """
    return single(field_values(doc, path, flat=flat))


def single(values: list[Any] | None) -> str | None:
    """:func:`single_keyword` of one path's leaf values (``None`` if absent)."""
    found = keywords(values)
    if len(found) == 1:
        return found[0]
    distinct = set(found)
    return distinct.pop() if len(distinct) == 1 else None
