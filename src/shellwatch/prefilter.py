"""A byte-level pre-filter derived from the loaded rules: drop records no rule could match.

Every rule clause that a record must satisfy includes a case-insensitive wildcard match on a Java
executable path (``process.executable`` for connections, ``process.parent.executable`` for execs).
Each pattern's longest ASCII literal run must therefore appear in the record, ASCII case aside,
unless JSON escapes hide it (``\\/``, ``\\u006a``): records with such escapes are decoded and checked
on their decoded text instead. A pattern with no literal run (``*``) disables the filter. The needles
come from whatever rules and lists are loaded, so operator extensions widen the filter themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from shellwatch.matching import literal_runs

__all__ = ["Prefilter"]

# An escape introducer that is not itself escaped: an odd number of backslashes before u or /.
_HIDING_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\[u/]")
_ASCII_RUN = re.compile(r"[\x00-\x7f]+")


def _needle(pattern: str) -> bytes | None:
    runs = [m.group(0) for run in literal_runs(pattern) for m in _ASCII_RUN.finditer(run)]
    if not runs:
        return None
    return max(runs, key=len).lower().encode("ascii")


@dataclass(frozen=True, slots=True)
class Prefilter:
    """``accepts(raw)`` is False only for records that no loaded rule can match."""

    needles: tuple[bytes, ...] | None  # None: the filter is off and accepts everything

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], *, enabled: bool = True) -> Prefilter:
        if not enabled:
            return cls(None)
        needles: set[bytes] = set()
        for pattern in patterns:
            needle = _needle(pattern)
            if needle is None:
                return cls(None)
            needles.add(needle)
        # A needle containing another needle is redundant.
        minimal = {n for n in needles if not any(o != n and o in n for o in needles)}
        return cls(tuple(sorted(minimal)))

    def accepts(self, raw: bytes) -> bool:
        needles = self.needles
        if needles is None:
            return True
        lowered = raw.lower()
        if any(n in lowered for n in needles):
            return True
        if (b"\\u" in raw or b"\\/" in raw) and _HIDING_ESCAPE.search(raw):
            return self._accepts_unescaped(raw, needles)
        return False

    @staticmethod
    def _accepts_unescaped(raw: bytes, needles: tuple[bytes, ...]) -> bool:
        try:
            canonical = orjson.dumps(orjson.loads(raw))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            return True  # undecodable: let the decoder report it
        lowered = canonical.lower()
        return any(n in lowered for n in needles)
