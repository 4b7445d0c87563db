"""Value semantics of EQL comparisons over ECS documents, as Elasticsearch applies them to indexed fields.

A field's values are the leaf values :func:`shellwatch.ecs.fields.flatten` finds under its path (a scalar is a
one-element array, ``null`` elements vanish, ``[]`` is no value). Every comparison holds when it holds for
*any* value (Elasticsearch matches a multi-valued field when any value matches). No value at all is null:
``== null`` holds, every other comparison fails, and ``not`` is the plain complement (Elasticsearch turns
``not`` into ``must_not``, so ``not field in (...)`` holds when the field is absent).

Types, without a mapping to consult:

- ECS ``ip`` fields (path's last part ``ip``: ``source.ip``, ``destination.ip``, ``host.ip``, ``related.ip``
  ...) hold addresses: a value that is not an address is dropped, as Elasticsearch rejects or ignores it, so
  ``destination.ip == null`` holds for ``"not-an-ip"``; IPv4-mapped IPv6 is the IPv4 address; equality with a
  string literal compares addresses (``"::ffff:0.0.0.0" == "0.0.0.0"``).
- Other strings are ``keyword``: ``==``/``in`` exact and case-sensitive; ``<``... compare code points.
- A number literal compares numerically with numbers and with strings that read as numbers (a numeric field
  indexes ``"3"`` as 3; a keyword field holding ``"3"`` matches the term ``3``); a string literal matches a
  number by its number (``event.code == "4624"`` and ``4624``). Booleans match ``true``/``false`` and the
  strings ``"true"``/``"false"``.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Final

from shellwatch.ecs.fields import Flat, as_keyword
from shellwatch.eql.ast import CompareOp, Scalar
from shellwatch.match.comparisons import IpAddress, parse_ip

__all__ = [
    "ORDER",
    "IpFieldValues",
    "Value",
    "as_address",
    "as_number",
    "as_text",
    "equals_literal",
    "ip_field_values",
    "is_ip_field",
    "is_plain_text",
    "ordered",
    "text_test",
    "values_equal",
]

Value = str | int | float | bool | IpAddress
ORDER: Final[dict[CompareOp, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


_ADDRESS: Final = (ipaddress.IPv4Address, ipaddress.IPv6Address)


def is_ip_field(path: str) -> bool:
    return path == "ip" or path.endswith(".ip")


def ip_values(raw: Sequence[Any]) -> tuple[IpAddress, ...]:
    out: list[IpAddress] = []
    for value in raw:
        if isinstance(value, str):
            address = parse_ip(value)
            if address is not None:
                out.append(address)
    return tuple(out)


def as_number(value: Value | Scalar) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def as_text(value: Value) -> str:
    """A value as a ``keyword`` indexes it (for ``:``, ``like``, ``in~`` and the string functions)."""
    keyword = as_keyword(value)
    return keyword if keyword is not None else str(value)  # an address, in its canonical text


def equals_literal(literal: Scalar) -> Callable[[Value], bool]:
    """A test ``value == literal`` for one non-null literal, compiled once."""
    if isinstance(literal, bool):
        text = "true" if literal else "false"
        return lambda v: v is literal if isinstance(v, bool) else v == text
    if isinstance(literal, int | float):
        number = float(literal)

        def equals_number(v: Value) -> bool:
            return not isinstance(v, bool) and as_number(v) == number

        return equals_number
    assert isinstance(literal, str)
    address = parse_ip(literal)
    number_or_none = as_number(literal)

    def equals_string(v: Value) -> bool:
        if isinstance(v, str):
            return v == literal
        if isinstance(v, bool):
            return literal == ("true" if v else "false")
        if isinstance(v, int | float):
            return number_or_none is not None and float(v) == number_or_none
        return address is not None and v == address

    return equals_string


def is_plain_text(literal: str) -> bool:
    """Whether only the very string ``literal`` equals it among the values of a field that is not an ip field:
    it reads as no number, boolean or address (then ``field == literal`` is plain membership)."""
    return as_number(literal) is None and literal not in ("true", "false") and parse_ip(literal) is None


def values_equal(a: Value, b: Value) -> bool:
    """``==`` between two document values (a field compared with a field or a function's result)."""
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    left, right = as_number(a), as_number(b)
    if left is not None and right is not None:
        return left == right
    return a == b


def ordered(op: CompareOp, a: Value, b: Value) -> bool:
    """``a op b`` for an ordering operator: numbers numerically, strings by code point, else false."""
    compare = ORDER[op]
    if isinstance(a, str) and isinstance(b, str):
        return bool(compare(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    left_n, right_n = as_number(a), as_number(b)
    if left_n is not None and right_n is not None:
        return bool(compare(left_n, right_n))
    if isinstance(a, _ADDRESS) and isinstance(b, _ADDRESS) and a.version == b.version:
        return bool(compare(a, b))
    return False


class IpFieldValues:
    """An ip field's addresses, parsed once per document however many comparisons read them: a one-document
    cache keyed by the flattened document's identity (kept as one tuple, so a reader never pairs a document
    with another's addresses)."""

    __slots__ = ("_last", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._last: tuple[Flat | None, tuple[IpAddress, ...]] = (None, ())

    def __call__(self, flat: Flat) -> tuple[IpAddress, ...]:
        last = self._last
        if last[0] is flat:
            return last[1]
        addresses = ip_values(flat.get(self.path, ()))
        self._last = (flat, addresses)
        return addresses


@functools.cache
def ip_field_values(path: str) -> IpFieldValues:
    """The one :class:`IpFieldValues` of ``path``: every comparison of the field shares its cache."""
    return IpFieldValues(path)


def text_test(regex: str) -> Callable[[Sequence[Value]], bool]:
    """Whether any value, as a keyword (:func:`as_text`), fully matches ``regex`` (``re.DOTALL``)."""
    full = re.compile(regex, re.DOTALL).fullmatch

    def matches(values: Sequence[Value]) -> bool:
        for v in values:  # noqa: SIM110 - no generator per call
            if full(v if type(v) is str else as_text(v)) is not None:
                return True
        return False

    return matches


def as_address(value: Value) -> IpAddress | None:
    """A value as an address: an address, or a string that parses as one (else ``None``)."""
    if isinstance(value, str):
        return parse_ip(value)
    return value if isinstance(value, IPv4Address | IPv6Address) else None
