"""The EQL functions of the subset (``cidrmatch``, ``startsWith``/``endsWith``/``stringContains`` and their
``~`` forms, ``length``) over a field's values, as :mod:`shellwatch.eql.compile` uses them.

:func:`call_values` is a call's result as a value (``length(process.name) > 3``, ``cidrmatch(...) == false``):
no value at all (an absent field, or no address among an ip field's values) is null. :func:`call_test` is the
call as a condition, which holds when that result is ``true``, without building it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shellwatch.ecs.fields import Flat
from shellwatch.eql.ast import Call, Literal
from shellwatch.eql.values import Value, as_address, text_test
from shellwatch.match.comparisons import IpRanges, pattern_regex

__all__ = ["Getter", "Predicate", "Values", "call_test", "call_values"]

Values = Sequence[Value]
Getter = Callable[[Flat], Values]
Predicate = Callable[[Flat], bool]


def _texts(call: Call) -> list[str]:
    return [str(arg.value) for arg in call.args[1:] if isinstance(arg, Literal)]


def _regex(call: Call, texts: list[str]) -> str:
    body = pattern_regex(texts[0], case_insensitive=call.insensitive, wildcards=False)
    return {"startswith": body + ".*", "endswith": ".*" + body, "stringcontains": ".*" + body + ".*"}[call.name]


def call_values(call: Call, source: Getter) -> Getter:
    """The call's result over ``source`` (its first argument's values)."""
    if call.name == "length":
        return lambda flat: tuple(len(v) for v in source(flat) if isinstance(v, str))
    texts = _texts(call)
    if call.name == "cidrmatch":
        ranges = IpRanges.parse(texts)  # checked by the parser

        def in_ranges(flat: Flat) -> tuple[bool, ...]:
            addresses = [a for a in map(as_address, source(flat)) if a is not None]
            if not addresses:
                return ()  # no address at all is null: Elasticsearch never indexed a non-address
            return (any(ranges.containing(a) is not None for a in addresses),)

        return in_ranges
    test = text_test(_regex(call, texts))

    def result(flat: Flat) -> tuple[bool, ...]:
        values = source(flat)
        return (test(values),) if values else ()

    return result


def call_test(call: Call, source: Getter) -> Predicate:
    """The call (not ``length``) as a condition: whether its result over ``source`` is ``true``."""
    texts = _texts(call)
    if call.name != "cidrmatch":
        test = text_test(_regex(call, texts))
        return lambda flat: test(source(flat))
    containing = IpRanges.parse(texts).containing  # checked by the parser

    def in_ranges(flat: Flat) -> bool:
        for value in source(flat):
            address = as_address(value)
            if address is not None and containing(address) is not None:
                return True
        return False

    return in_ranges
