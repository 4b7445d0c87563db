"""Rule exceptions as data: Elastic's exception items, in TOML files beside the rules, as event filters.

Elastic attaches exception lists to a rule; an event that matches an item of them is left out of the rule's
search, so it fills no stage of any sequence ("if an exception matches any events that are necessary to
complete the sequence, alerts are not created"). The same holds here: a rule's exceptions are tested on each
event that would fill one of its stages, and an excepted event is dropped for that rule (counted per item).

A file (any ``*.toml`` among the rule paths) whose top level holds ``[exception_list]`` is one list::

    [exception_list]
    name = "Build farm"
    description = "CI agents run shells from their Java build tools"   # optional
    rule_ids = ["2a1b...", "..."]                                       # the rules it is attached to

    [[exception_list.items]]
    name = "Jenkins agents"
    entries = [
      { field = "host.name", operator = "included", type = "match_any", value = ["ci-01", "ci-02"] },
      { field = "process.parent.executable", operator = "included", type = "match", value = "/opt/jdk/bin/java" },
    ]

An item matches when all its entries hold; a rule's event is excepted when any item of its lists matches.
Entries use Elastic's names and semantics (keyword fields exact and case-sensitive; any value of a
multi-valued field may satisfy an entry):

- ``match`` (one string) and ``match_any`` (a list): a value equals one of them, compared as EQL's ``==``
  compares (a number matches the string of its number). On ECS ``ip`` fields each one is an address or a
  CIDR block, and values are compared as addresses (``10.0.0.0/8`` holds ``10.1.2.3``).
- ``wildcard``: a value matches the pattern as a whole (``*`` any run, ``?`` one character), case-sensitive.
- ``exists`` (no ``value``): the field has a value.
- ``operator = "excluded"`` negates the entry ("is not", "does not exist"), so it holds on an absent field.

Scoping an item to hosts is an entry on ``host.id`` or ``host.name``. Elastic's ``list`` entries (value
lists held in Elasticsearch) and ``nested`` entries are refused with the reason, as is any unknown key: a
typo must not silently widen what is excepted. Pure code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shellwatch.ecs.fields import FieldSet, Flat, flatten
from shellwatch.eql.values import Value, as_text, equals_literal, ip_values, is_ip_field
from shellwatch.errors import RuleFileError
from shellwatch.match.comparisons import IpRanges, parse_ip, pattern_regex
from shellwatch.rules.loader import digest_of

__all__ = [
    "ExceptionEntry",
    "ExceptionItem",
    "ExceptionList",
    "RuleExceptions",
    "is_exception_list",
    "parse_exception_list",
]

EntryType = Literal["match", "match_any", "wildcard", "exists"]
Operator = Literal["included", "excluded"]
ENTRY_TYPES: tuple[EntryType, ...] = ("match", "match_any", "wildcard", "exists")
OPERATORS: tuple[Operator, ...] = ("included", "excluded")
_REFUSED_TYPES = {
    "list": "value lists live in Elasticsearch, which shellwatch does not read: write the values as match_any",
    "nested": "nested entries need a nested mapping, which ECS endpoint events do not use: name the field itself",
}
_FIELD = re.compile(r"[A-Za-z0-9_@-]+(?:\.[A-Za-z0-9_@-]+)*")
_LIST_KEYS = frozenset({"name", "description", "rule_ids", "items"})
_ITEM_KEYS = frozenset({"name", "description", "entries"})
_ENTRY_KEYS = frozenset({"field", "operator", "type", "value"})


@dataclass(frozen=True, slots=True)
class ExceptionEntry:
    field: str
    operator: Operator
    type: EntryType
    values: tuple[str, ...]  # empty for ``exists``


@dataclass(frozen=True, slots=True)
class ExceptionItem:
    name: str
    description: str | None
    entries: tuple[ExceptionEntry, ...]


@dataclass(frozen=True, slots=True)
class ExceptionList:
    file: str
    name: str
    description: str | None
    rule_ids: tuple[str, ...]
    items: tuple[ExceptionItem, ...]
    digest: str


def is_exception_list(data: Mapping[str, Any]) -> bool:
    """Whether a parsed TOML file is an exception list (its top level holds ``[exception_list]``)."""
    return "exception_list" in data


def _text(table: Mapping[str, Any], key: str, where: str, file: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RuleFileError(file, f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _unknown(table: Mapping[str, Any], allowed: frozenset[str], where: str, file: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise RuleFileError(file, f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


def _entry(raw: Any, where: str, file: str) -> ExceptionEntry:
    if not isinstance(raw, dict):
        raise RuleFileError(file, f"{where}: expected a table, got {raw!r}")
    kind = raw.get("type")
    if kind in _REFUSED_TYPES:
        raise RuleFileError(file, f"{where}.type: {kind!r} entries are not supported: {_REFUSED_TYPES[kind]}")
    _unknown(raw, _ENTRY_KEYS, where, file)
    field = raw.get("field")
    if not isinstance(field, str) or _FIELD.fullmatch(field) is None:
        raise RuleFileError(file, f"{where}.field: expected a dotted field name, got {field!r}")
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise RuleFileError(file, f"{where}.operator: expected one of {', '.join(OPERATORS)}, got {operator!r}")
    if kind not in ENTRY_TYPES:
        raise RuleFileError(file, f"{where}.type: expected one of {', '.join(ENTRY_TYPES)}, got {kind!r}")
    value = raw.get("value")
    values: tuple[str, ...]
    if kind == "exists":
        if value is not None:
            raise RuleFileError(file, f"{where}.value: an exists entry takes no value, got {value!r}")
        values = ()
    elif kind == "match_any":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise RuleFileError(file, f"{where}.value: expected a non-empty list of non-empty strings, got {value!r}")
        values = tuple(value)
    else:
        if not isinstance(value, str) or not value:
            raise RuleFileError(file, f"{where}.value: expected a non-empty string, got {value!r}")
        values = (value,)
    if is_ip_field(field) and kind in ("match", "match_any"):
        for v in values:
            if _ip_spec(v) is None:
                raise RuleFileError(file, f"{where}.value: {v!r} is no address or CIDR block ({field} is an ip field)")
    return ExceptionEntry(field, operator, kind, values)


def _ip_spec(value: str) -> str | None:
    """An address or CIDR block as a network spec (``10.0.0.1`` -> ``10.0.0.1/32``), else ``None``."""
    if "/" in value:
        try:
            IpRanges.parse([value])
        except ValueError:
            return None
        return value
    address = parse_ip(value)
    return None if address is None else f"{address}/{address.max_prefixlen}"


def parse_exception_list(data: Mapping[str, Any], file: str) -> ExceptionList:
    """The list a parsed TOML file holds; raises :class:`RuleFileError` naming the first problem."""
    table = data["exception_list"]
    if not isinstance(table, dict):
        raise RuleFileError(file, f"exception_list: expected a table, got {table!r}")
    extra_top = sorted(set(data) - {"exception_list", "metadata"})
    if extra_top:
        raise RuleFileError(file, f"unknown top-level key(s) {', '.join(extra_top)} beside exception_list")
    _unknown(table, _LIST_KEYS, "exception_list", file)
    name = _text(table, "name", "exception_list", file)
    rule_ids = table.get("rule_ids")
    if not isinstance(rule_ids, list) or not rule_ids or not all(isinstance(r, str) and r for r in rule_ids):
        raise RuleFileError(file, f"exception_list.rule_ids: expected a non-empty list of rule ids, got {rule_ids!r}")
    raw_items = table.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise RuleFileError(file, "exception_list.items: expected at least one [[exception_list.items]]")
    items: list[ExceptionItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        where = f"exception_list.items[{index}]"
        if not isinstance(raw, dict):
            raise RuleFileError(file, f"{where}: expected a table, got {raw!r}")
        _unknown(raw, _ITEM_KEYS, where, file)
        item_name = _text(raw, "name", where, file)
        assert item_name is not None
        if item_name in seen:
            raise RuleFileError(file, f"{where}.name: {item_name!r} names two items of this list")
        seen.add(item_name)
        entries = raw.get("entries")
        if not isinstance(entries, list) or not entries:
            raise RuleFileError(file, f"{where}.entries: expected at least one entry (an empty item would except all)")
        items.append(
            ExceptionItem(
                item_name,
                _text(raw, "description", where, file, required=False),
                tuple(_entry(e, f"{where}.entries[{i}]", file) for i, e in enumerate(entries)),
            )
        )
    assert name is not None
    return ExceptionList(
        file=file,
        name=name,
        description=_text(table, "description", "exception_list", file, required=False),
        rule_ids=tuple(dict.fromkeys(rule_ids)),
        items=tuple(items),
        digest=digest_of(data),
    )


Test = Callable[[Flat], bool]


def _values_test(entry: ExceptionEntry) -> Test:
    """Whether some value of the entry's field satisfies it, before its operator."""
    path = entry.field
    if entry.type == "exists":
        return lambda flat: bool(ip_values(flat.get(path, ())) if is_ip_field(path) else flat.get(path))
    if entry.type == "wildcard":
        full = re.compile(pattern_regex(entry.values[0], case_insensitive=False), re.DOTALL).fullmatch

        def wildcard(flat: Flat) -> bool:
            return any(full(as_text(v)) is not None for v in flat.get(path, ()))

        return wildcard
    if is_ip_field(path):
        ranges = IpRanges.parse([s for s in (_ip_spec(v) for v in entry.values) if s is not None])
        return lambda flat: any(ranges.containing(a) is not None for a in ip_values(flat.get(path, ())))
    tests = [equals_literal(v) for v in entry.values]

    def equals(flat: Flat) -> bool:
        values: Sequence[Value] = flat.get(path, ())
        return any(test(v) for v in values for test in tests)

    return equals


def _entry_test(entry: ExceptionEntry) -> Test:
    test = _values_test(entry)
    if entry.operator == "excluded":
        return lambda flat: not test(flat)
    return test


class RuleExceptions:
    """One rule's exception lists, compiled: :meth:`matching` names the first item an event matches."""

    def __init__(self, lists: Iterable[ExceptionList]) -> None:
        self.lists = tuple(lists)
        self.fields = FieldSet(e.field for lst in self.lists for item in lst.items for e in item.entries)
        self._tests = tuple(
            (f"{lst.name}: {item.name}", tuple(_entry_test(e) for e in item.entries))
            for lst in self.lists
            for item in lst.items
        )

    def __bool__(self) -> bool:
        return bool(self._tests)

    def matching(self, document: Mapping[str, Any]) -> str | None:
        """``"<list name>: <item name>"`` of the first item whose entries all hold on ``document`` (a decoded ECS
        document), else ``None``."""
        flat = flatten(document, self.fields)
        for label, tests in self._tests:
            if all(test(flat) for test in tests):
                return label
        return None
