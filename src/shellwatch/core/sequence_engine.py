"""The N-stage sequence engine for one compiled EQL rule, with Elasticsearch's semantics (DESIGN §3, generalized).

Events must be applied in Elasticsearch's order (``@timestamp`` in milliseconds, then the tie-break of
:mod:`shellwatch.core.event_order`); this module decides what a stream in that order matches. Each point is
taken from Elasticsearch's matcher, ``x-pack/plugin/eql/src/main/java/org/elasticsearch/xpack/eql/execution/
sequence/`` (``SequenceMatcher``, ``KeyToSequences``, ``OrdinalGroup``):

- **Stages**: ``runs=N`` repeats a stage N times (the EQL parser expands it; ``with runs=3`` is three
  consecutive identical stages), so the engine works on the expanded list.
- **Join**: an event joins on the values of its stage's keys (the sequence's ``by`` keys, then the stage's
  own). A key field without a value makes the event unable to fill that stage (Elasticsearch extracts no
  key for it); a ``?field`` key without a value joins as null. Several values are one key: the whole list.
  ECS ``ip`` keys compare as addresses (``::ffff:10.0.0.1`` is ``10.0.0.1``).
- **Newest wins**: ``SequenceMatcher.match`` takes, for the hit's key, ``group.trimBefore(ordinal)`` of the
  previous stage: the *latest* sequence whose last event is strictly before the hit, removing it and every
  older one. Applied in order, every pending sequence is before the hit, so one pending sequence per key and
  stage is all that can ever be used: a sequence reaching stage k replaces the one waiting there.
- **Consumed**: the sequence taken by a hit leaves its stage (``trimBefore`` removes the match), so a
  completed sequence alerts once and the next hit needs a new one.
- **maxspan inclusive**: ``exceedsMaxSpan`` rejects ``hit - start > maxspan`` (start: the first event); the
  rejected sequence is gone all the same (it was trimmed first).
- **One event, several stages**: a hit joins only a sequence whose last event is strictly before it, so an
  event never fills two stages of one sequence. Applying the later stages first gives exactly that.

State is bounded: a cap on keys (least recently written evicted first, counted), and :meth:`evict` drops
sequences whose first event is older than ``now - maxspan`` (event time; nothing else can complete them).
A rule without maxspan is bounded by the cap alone (Elasticsearch bounds it by the search's time range).
Pure code: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from shellwatch.ecs.fields import Flat
from shellwatch.eql.compile import CompiledQuery
from shellwatch.eql.values import ip_values, is_ip_field

__all__ = ["Candidate", "JoinKey", "SequenceEngine", "SequenceMatch", "join_key"]

JoinKey = tuple[Any, ...]
_NO_SCOPE: Any = object()


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event that satisfies at least one stage of a rule: its read position, time, and the stages it fills.

    ``stages`` are indexes of the rule's compiled stages (before ``runs`` expansion); ``payload`` is whatever
    the caller needs back in a match (the document, its identity ...).
    """

    seq: int
    timestamp_ms: int
    source: str
    flat: Flat
    stages: tuple[int, ...]
    payload: Any
    late: bool = False


@dataclass(frozen=True, slots=True)
class SequenceMatch:
    """A completed sequence: its events in stage order and the join key of each."""

    events: tuple[Candidate, ...]
    keys: tuple[JoinKey, ...]


@dataclass(frozen=True, slots=True)
class _Pending:
    start_ms: int
    events: tuple[Candidate, ...]
    keys: tuple[JoinKey, ...]


def join_key(flat: Flat, fields: Sequence[str], optional: frozenset[str]) -> JoinKey | None:
    """The values of ``fields`` in ``flat``; ``None`` when a mandatory one has no value."""
    key: list[Any] = []
    for path in fields:
        values: Sequence[Any] = flat.get(path, ())
        if values and is_ip_field(path):
            values = [str(a) for a in ip_values(values)]
        if not values:
            if path not in optional:
                return None
            key.append(None)
        else:
            key.append(values[0] if len(values) == 1 else tuple(values))
    return tuple(key)


class SequenceEngine:
    """One rule's pending sequences per join key; :meth:`apply` takes candidates in Elasticsearch's order."""

    def __init__(self, compiled: CompiledQuery, *, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.maxspan_ms = compiled.maxspan_ms
        self.max_keys = max_keys
        expanded: list[int] = []
        for index, stage in enumerate(compiled.stages):
            expanded.extend([index] * stage.runs)
        self._origin = tuple(expanded)  # expanded position -> compiled stage index
        self._positions: dict[int, tuple[int, ...]] = {
            index: tuple(p for p, o in enumerate(expanded) if o == index) for index in range(len(compiled.stages))
        }
        self._keys = tuple((stage.keys, stage.optional_keys) for stage in compiled.stages)
        self._last = len(expanded) - 1
        # join key -> the sequence waiting at each expanded stage (index k: matched stages 0..k)
        self._pending: OrderedDict[JoinKey, list[_Pending | None]] = OrderedDict()
        # scope (a host, for a host-local rule) -> the keys last written from it, for eviction by its own time
        self._scope_of: dict[JoinKey, Hashable] = {}
        self._keys_of: dict[Hashable, dict[JoinKey, None]] = {}
        self.evicted_by_cap = 0
        self.rejected_by_maxspan = 0

    @property
    def stage_count(self) -> int:
        """Stages after ``runs`` expansion."""
        return self._last + 1

    def pending_count(self) -> int:
        return sum(1 for slots in self._pending.values() for p in slots if p is not None)

    def apply(self, candidate: Candidate, scope: Hashable = None) -> list[SequenceMatch]:
        """Apply one event (the next in order within ``scope``); the sequences it completes."""
        completed: list[SequenceMatch] = []
        positions = sorted((p for s in candidate.stages for p in self._positions[s]), reverse=True)
        keys: dict[int, JoinKey | None] = {}
        for position in positions:  # later stages first: an event never fills two stages of one sequence
            origin = self._origin[position]
            if origin not in keys:
                fields, optional = self._keys[origin]
                keys[origin] = join_key(candidate.flat, fields, optional)
            key = keys[origin]
            if key is None:
                continue  # a missing join key never joins
            if position == 0:
                started = _Pending(candidate.timestamp_ms, (candidate,), (key,))
                if self._last == 0:
                    completed.append(SequenceMatch(started.events, started.keys))
                else:
                    self._put(key, 0, started, scope)
                continue
            slots = self._pending.get(key)
            waiting = slots[position - 1] if slots is not None else None
            if waiting is None or slots is None:
                continue
            if candidate.timestamp_ms < waiting.events[-1].timestamp_ms:
                continue  # a late event: only a sequence strictly before it could take it (findBefore)
            slots[position - 1] = None  # consumed (or rejected): trimBefore removed it either way
            if self.maxspan_ms is not None and candidate.timestamp_ms - waiting.start_ms > self.maxspan_ms:
                self.rejected_by_maxspan += 1
                self._drop_if_empty(key)
                continue
            extended = _Pending(waiting.start_ms, (*waiting.events, candidate), (*waiting.keys, key))
            if position == self._last:
                completed.append(SequenceMatch(extended.events, extended.keys))
                self._drop_if_empty(key)
            else:
                self._put(key, position, extended, scope)
        return completed

    def _put(self, key: JoinKey, position: int, pending: _Pending, scope: Hashable) -> None:
        slots = self._pending.get(key)
        if slots is None:
            slots = [None] * self._last
            self._pending[key] = slots
        else:
            self._pending.move_to_end(key)
        slots[position] = pending  # the newest sequence at a stage replaces the one waiting there
        if self._scope_of.get(key, _NO_SCOPE) != scope:
            self._scope_of[key] = scope
            self._keys_of.setdefault(scope, {})[key] = None
        while len(self._pending) > self.max_keys:
            oldest, _ = self._pending.popitem(last=False)
            self._forget(oldest)
            self.evicted_by_cap += 1

    def _forget(self, key: JoinKey) -> None:
        scope = self._scope_of.pop(key, _NO_SCOPE)
        keys = self._keys_of.get(scope)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self._keys_of[scope]

    def _drop_if_empty(self, key: JoinKey) -> None:
        slots = self._pending.get(key)
        if slots is not None and all(p is None for p in slots):
            del self._pending[key]
            self._forget(key)

    def scope_pending(self, scope: Hashable) -> list[tuple[int, tuple[Candidate, ...]]]:
        """The sequences waiting in ``scope``: (expanded stage reached, their events), least recent key first."""
        waiting: list[tuple[int, tuple[Candidate, ...]]] = []
        for key in self._keys_of.get(scope, ()):
            for position, pending in enumerate(self._pending[key]):
                if pending is not None:
                    waiting.append((position, pending.events))
        return waiting

    def restore(self, position: int, events: Sequence[Candidate], scope: Hashable) -> bool:
        """Put back a sequence that reached expanded stage ``position`` with ``events`` (from a snapshot), its
        join keys worked out again; ``False`` (nothing put back) when the events no longer fill those stages
        (the rule changed) or one lacks its key."""
        if len(events) != position + 1 or position >= self._last:
            return False
        keys: list[JoinKey] = []
        for index, candidate in enumerate(events):
            origin = self._origin[index]
            if origin not in candidate.stages:
                return False
            fields, optional = self._keys[origin]
            key = join_key(candidate.flat, fields, optional)
            if key is None or (keys and key != keys[-1]):
                return False
            keys.append(key)
        self._put(keys[-1], position, _Pending(events[0].timestamp_ms, tuple(events), tuple(keys)), scope)
        return True

    def drop_scope(self, scope: Hashable) -> int:
        """Forget every sequence waiting in ``scope`` (its host moved elsewhere or was evicted); how many keys."""
        keys = list(self._keys_of.get(scope, ()))
        for key in keys:
            self._pending.pop(key, None)
            self._forget(key)
        return len(keys)

    def evict(self, now_ms: int, scope: Hashable = None) -> int:
        """Drop ``scope``'s sequences that can no longer complete by ``now_ms``, its event time; how many.

        Eviction follows each scope's own time, so one host's clock never evicts another host's state."""
        if self.maxspan_ms is None:
            return 0
        oldest_start = now_ms - self.maxspan_ms
        dropped = 0
        for key in list(self._keys_of.get(scope, ())):
            slots = self._pending[key]
            for index, pending in enumerate(slots):
                if pending is not None and pending.start_ms < oldest_start:
                    slots[index] = None
                    dropped += 1
            self._drop_if_empty(key)
        return dropped
