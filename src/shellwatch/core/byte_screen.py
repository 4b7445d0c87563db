"""A byte-level pre-filter derived from the loaded rules: drop records no rule could match.

It is built from wildcard patterns, one of which a value of every record some rule could match must match:
for the sequence rule, the patterns of one conjunct each stage requires (:mod:`shellwatch.eql.screen`); for
the shell rule, its Java parent names and executables. Each pattern's needle
(:func:`~shellwatch.match.comparisons.screen_needle`, printable ASCII) must therefore appear in the record,
ASCII case aside, unless JSON escapes hide it (``\\/``, ``\\u006a``): records with such escapes are decoded
and checked on their decoded text instead. A pattern without a needle (``*``) disables the filter. The
needles come from whatever rules and lists are loaded, so operator extensions widen the filter themselves.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

import orjson

from shellwatch.match.comparisons import screen_needle

__all__ = ["ByteScreen"]

# Records screened per pass: a few hundred KB, so each needle's search over the joined chunk stays in cache
# (a fetch of a partition is often 1 MB or more; searching it whole is measurably slower per record).
_CHUNK_RECORDS = 512
# An escape introducer that is not itself escaped: an odd number of backslashes before u or /.
_HIDING_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\[u/]")


@dataclass(frozen=True, slots=True)
class ByteScreen:
    """``accepts(raw)`` is False only for records that no loaded rule can match."""

    needles: tuple[bytes, ...] | None  # None: the filter is off and accepts everything

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], *, enabled: bool = True) -> ByteScreen:
        if not enabled:
            return cls(None)
        needles: set[bytes] = set()
        for pattern in patterns:
            needle = screen_needle(pattern)
            if needle is None:
                return cls(None)
            needles.add(needle.encode("ascii"))
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

    def accepted(self, raws: Sequence[bytes]) -> list[int]:
        """Indices (ascending) of the records of *raws* that :meth:`accepts` lets through, in a few C passes.

        Equivalent to ``[i for i, raw in enumerate(raws) if self.accepts(raw)]`` without a Python call per
        record: the records are joined, lower-cased and searched once per needle; a hit counts only when it
        lies inside one record. Records holding an escape introducer that no needle hit get the full check.
        """
        needles = self.needles
        if needles is None:
            return list(range(len(raws)))
        if len(raws) > _CHUNK_RECORDS:
            return [
                start + index
                for start in range(0, len(raws), _CHUNK_RECORDS)
                for index in self._accepted_chunk(raws[start : start + _CHUNK_RECORDS], needles)
            ]
        return self._accepted_chunk(raws, needles)

    def _accepted_chunk(self, raws: Sequence[bytes], needles: tuple[bytes, ...]) -> list[int]:
        joined = b"".join(raws)
        ends = list(accumulate(map(len, raws)))
        starts = [0, *ends[:-1]]
        hits: set[int] = set()
        lowered = joined.lower()
        for needle in needles:
            self._scan(lowered, needle, starts, ends, hits)
        if b"\\" in joined:  # one memchr pass; searching two-byte introducers is far slower
            escaped: set[int] = set()
            for introducer in (b"\\u", b"\\/"):
                self._scan(joined, introducer, starts, ends, escaped)
            hits.update(i for i in escaped - hits if self.accepts(raws[i]))
        return sorted(hits)

    @staticmethod
    def _scan(haystack: bytes, needle: bytes, starts: list[int], ends: list[int], found: set[int]) -> None:
        """Add to *found* the index of every record that holds *needle* entirely within itself."""
        size = len(needle)
        position = haystack.find(needle)
        while position != -1:
            index = bisect_right(starts, position) - 1  # the last record starting at or before it (never empty)
            if position + size <= ends[index]:
                found.add(index)
                position = haystack.find(needle, ends[index])  # next record
            else:  # straddles a boundary: look again one byte further
                position = haystack.find(needle, position + 1)

    @staticmethod
    def _accepts_unescaped(raw: bytes, needles: tuple[bytes, ...]) -> bool:
        try:
            canonical = orjson.dumps(orjson.loads(raw))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            return True  # undecodable: let the decoder report it
        lowered = canonical.lower()
        return any(n in lowered for n in needles)
