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
from dataclasses import dataclass, field
from itertools import accumulate

import orjson
from ahocorasick_rs import BytesAhoCorasick

from shellwatch.match.comparisons import screen_needle

__all__ = ["ByteScreen"]

# Records screened per pass: a few hundred KB, so the joined and the lower-cased chunk stay in cache (a fetch
# of a partition is often 1 MB or more).
_CHUNK_RECORDS = 512
# The two JSON escapes that can hide a needle's character: \\u006a for j, \\/ for /.
_INTRODUCERS = (b"\\u", b"\\/")
# An escape introducer that is not itself escaped: an odd number of backslashes before u or /.
_HIDING_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\[u/]")


@dataclass(frozen=True, slots=True)
class ByteScreen:
    """``accepts(raw)`` is False only for records that no loaded rule can match."""

    needles: tuple[bytes, ...] | None  # None: the filter is off and accepts everything
    # the needles, then the escape introducers, in one Aho-Corasick automaton (Rust; a single pass per chunk)
    _automaton: BytesAhoCorasick = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_automaton", BytesAhoCorasick([*(self.needles or ()), *_INTRODUCERS]))

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
        """Indices (ascending) of the records of *raws* that :meth:`accepts` lets through, in three native passes.

        Equivalent to ``[i for i, raw in enumerate(raws) if self.accepts(raw)]`` without a Python call per
        record: the records are joined, lower-cased and searched once for every needle and escape introducer
        together. Records holding an introducer that no needle hit get the full check.
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

    def accepted_lines(self, text: bytes) -> list[tuple[int, int]]:
        """The (start, end) of each line of ``text`` (cut at line feeds, which are excluded) that :meth:`accepts` lets
        through, ascending: the records of a file screened in place, without cutting out the lines it drops.

        ``text`` is lower-cased and searched once, as a chunk of :meth:`accepted` is; a needle or an introducer never
        holds a line feed, so each match lies inside one line.
        """
        if self.needles is None:
            raise ValueError("the filter is off: every line passes, screening a block in place does not apply")
        spans: list[tuple[int, int]] = []
        escaped: list[tuple[int, int]] = []
        end = -1  # the end of the line of the last match
        for pattern, position, _end in self._automaton.find_matches_as_indexes(text.lower()):
            if position < end:  # another match in a line already taken (a line with an introducer gets the full check)
                continue
            start = text.rfind(b"\n", 0, position) + 1
            end = text.find(b"\n", position)
            if end == -1:
                end = len(text)
            (spans if pattern < len(self.needles) else escaped).append((start, end))
        if escaped:
            spans += [(start, end) for start, end in escaped if self.accepts(text[start:end])]
            spans.sort()
        return spans

    def _accepted_chunk(self, raws: Sequence[bytes], needles: tuple[bytes, ...]) -> list[int]:
        # Records joined by a line feed, which no needle or introducer holds (they are printable ASCII), so
        # every match lies inside one record; lower-cased, then one pass of the automaton finds them all.
        # Matches do not overlap, but each record holding a pattern gets at least one: its earliest-ending
        # occurrence cannot be hidden by a match that began in an earlier record.
        joined = b"\n".join(raws)
        starts = list(accumulate([len(raw) + 1 for raw in raws[:-1]], initial=0))
        hits: set[int] = set()
        escaped: set[int] = set()
        count = len(needles)
        for pattern, position, _end in self._automaton.find_matches_as_indexes(joined.lower()):
            (hits if pattern < count else escaped).add(bisect_right(starts, position) - 1)
        # a record holding an introducer (or, lower-cased, "\\U": a false alarm the full check dismisses) may
        # hide a needle, or an introducer match may have hidden one: the full check decides
        hits.update(i for i in escaped - hits if self.accepts(raws[i]))
        return sorted(hits)

    @staticmethod
    def _accepts_unescaped(raw: bytes, needles: tuple[bytes, ...]) -> bool:
        try:
            canonical = orjson.dumps(orjson.loads(raw))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            return True  # undecodable: let the decoder report it
        lowered = canonical.lower()
        return any(n in lowered for n in needles)
