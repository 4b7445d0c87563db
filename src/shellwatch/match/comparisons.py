"""The comparison primitives of the EQL dialect the rules use.

- ``:`` (:func:`compile_wildcards`): wildcard match, ``*`` any run of characters (``/`` and the empty
  string included), ``?`` exactly one character, case-insensitive the way Elasticsearch's
  case-insensitive wildcard automaton is: a pattern character matches itself and its single-code-point
  lower- and upper-case forms, nothing else (so ``s`` does not match the long s U+017F, unlike Python's
  ``re.IGNORECASE``). The whole value must match.
- ``==`` / ``in``: exact, case-sensitive string equality (plain ``in`` on tuples).
- ``cidrmatch`` (:class:`IpRanges`): addresses parsed as Elasticsearch's ``ip`` type does; an
  IPv4-mapped IPv6 address is the IPv4 address; a value that is not an address matches nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "IpAddress",
    "IpRanges",
    "WildcardSet",
    "compile_wildcards",
    "literal_runs",
    "parse_ip",
    "pattern_regex",
    "screen_needle",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _char_class(ch: str, case_insensitive: bool = True) -> str:
    if not case_insensitive:
        return re.escape(ch)
    variants = {ch}
    for form in (ch.lower(), ch.upper()):
        if len(form) == 1:
            variants.add(form)
    if len(variants) == 1:
        return re.escape(ch)
    return "[" + "".join(re.escape(v) for v in sorted(variants)) + "]"


def pattern_regex(pattern: str, *, case_insensitive: bool = True, wildcards: bool = True) -> str:
    """A Python regex (for ``fullmatch`` with ``re.DOTALL``) equivalent to one pattern.

    ``wildcards``: ``*`` is any run and ``?`` one character (``like``, ``:``); otherwise every character is
    literal (``in~``, ``startsWith~``). A backslash is always a literal character, as in Elasticsearch's EQL,
    where ``"C:\\Windows\\*"`` is a directory followed by anything.
    """
    parts: list[str] = []
    for ch in pattern:
        if wildcards and ch == "*":
            parts.append(".*")
        elif wildcards and ch == "?":
            parts.append(".")
        else:
            parts.append(_char_class(ch, case_insensitive))
    return "(?:" + "".join(parts) + ")"


@dataclass(frozen=True, slots=True)
class WildcardSet:
    """A compiled list of ``:`` patterns; :meth:`matches` holds when any value matches any pattern."""

    patterns: tuple[str, ...]
    _regex: re.Pattern[str]
    _each: tuple[re.Pattern[str], ...]

    def matches_one(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None

    def first_match(self, values: Iterable[str]) -> tuple[str, str] | None:
        """Return ``(value, pattern)`` for the first value that matches, or ``None``."""
        for value in values:
            if self._regex.fullmatch(value) is not None:
                for pattern, regex in zip(self.patterns, self._each, strict=True):
                    if regex.fullmatch(value) is not None:
                        return value, pattern
        return None

    def matches(self, values: Iterable[str]) -> bool:
        return any(self._regex.fullmatch(v) is not None for v in values)


def compile_wildcards(patterns: Sequence[str]) -> WildcardSet:
    body = "|".join(pattern_regex(p) for p in patterns) if patterns else "(?!)"
    each = tuple(re.compile(pattern_regex(p), re.DOTALL) for p in patterns)
    return WildcardSet(tuple(patterns), re.compile(body, re.DOTALL), each)


def literal_runs(pattern: str) -> list[str]:
    """The literal stretches of a wildcard pattern (the text between ``*`` and ``?``)."""
    return [run for run in re.split(r"[*?]", pattern) if run]


# Printable ASCII that JSON writers leave as it is (not ``"`` or ``\``, which they escape).
_VERBATIM_RUN = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
# Every character of a finite number's text (Python's repr of an int or a float), lower-cased; and the other texts
# a number or a boolean reads as (a JSON fallback parse reads 1e999 as inf; Avro doubles hold nan too).
_FINITE_NUMBER_TEXT = frozenset("0123456789+-.e")
_OTHER_NUMBER_OR_BOOLEAN_TEXTS = ("inf", "-inf", "nan", "true", "false")


def screen_needle(pattern: str) -> str | None:
    """Lower-cased text that every record holding a value matching ``pattern`` holds too, ASCII case aside and
    JSON's ``\\u``/``\\/`` escapes aside; ``None`` when there is none (then no byte check can use the pattern).

    It is the longest stretch of the pattern's literal text (between ``*`` and ``?``) that is printable ASCII
    other than ``"`` and ``\\`` (a JSON writer may escape any other character), provided the pattern cannot match
    the text a number or a boolean reads as: that text need not be in the record (``1E2`` reads as ``100.0``;
    Avro writes numbers and booleans in binary), so such a pattern has no needle. An ASCII pattern character
    matches only ASCII characters, even case-insensitively (:func:`pattern_regex`), so lower-casing the record's
    bytes is exact.
    Treating an exact string (``==``, ``in``) as a pattern is sound: its runs are stretches of it.
    """
    if _could_read_a_number_or_boolean(pattern):
        return None
    runs = [m.group(0).lower() for run in literal_runs(pattern) for m in _VERBATIM_RUN.finditer(run)]
    return max(runs, key=len) if runs else None


def _could_read_a_number_or_boolean(pattern: str) -> bool:
    """Whether ``pattern`` (its ``*`` and ``?`` as wildcards, case ignored: the widest reading) matches some text a
    number or a boolean reads as. Finite numbers read as text over ``0-9 + - . e``, which a pattern can match only
    when all its literal characters are among them; the few other texts are tried."""
    literal = "".join(literal_runs(pattern)).lower()
    if set(literal) <= _FINITE_NUMBER_TEXT:
        return True
    regex = re.compile(pattern_regex(pattern), re.DOTALL)
    return any(regex.fullmatch(text) for text in _OTHER_NUMBER_OR_BOOLEAN_TEXTS)


@lru_cache(maxsize=16_384)  # addresses repeat (a host talks to the same peers); the parsed objects are immutable
def parse_ip(value: str) -> IpAddress | None:
    """Parse an address as Elasticsearch's ``ip`` field type would, or return ``None``.

    IPv4 dotted quads without leading zeros, IPv6 in any RFC 4291 text form (embedded IPv4 included);
    an IPv4-mapped IPv6 address becomes its IPv4 address. Zone ids (``%eth0``), CIDR suffixes, spaces and
    anything else are not addresses.
    """
    if not value or "%" in value or "/" in value or value.strip() != value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class IpRanges:
    """A ``cidrmatch`` list. A bare address means a single-address network (``::1`` is ``::1/128``)."""

    specs: tuple[str, ...]
    networks: tuple[IpNetwork, ...]
    # (version, first address, last address, spec) of each range, as integers: a check is two comparisons
    bounds: tuple[tuple[int, int, int, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bounds = tuple(
            (n.version, int(n.network_address), int(n.broadcast_address), spec)
            for spec, n in zip(self.specs, self.networks, strict=True)
        )
        object.__setattr__(self, "bounds", bounds)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> IpRanges:
        """Parse CIDR specs; raises ``ValueError`` naming the bad one."""
        networks: list[IpNetwork] = []
        for spec in specs:
            try:
                networks.append(ipaddress.ip_network(spec, strict=True))
            except ValueError as exc:
                raise ValueError(f"not a CIDR block: {spec!r} ({exc})") from None
        return cls(tuple(specs), tuple(networks))

    def containing(self, address: IpAddress) -> str | None:
        """The spec of the first range holding ``address``, or ``None``."""
        version, value = address.version, int(address)
        for network_version, first, last, spec in self.bounds:
            if network_version == version and first <= value <= last:
                return spec
        return None
