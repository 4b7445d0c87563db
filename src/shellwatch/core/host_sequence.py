"""One host's sequence state, and what applying a qualifying event to it in event-time order does.

The :class:`~shellwatch.core.correlate.Correlator` decides *when* a host's events are applied (DESIGN §4);
this module is the step itself (DESIGN §3). A connection becomes its join key's pending connection, the
newest replacing an older one; an exec no later than ``maxspan_ms`` (inclusive) after its key's pending
connection completes the sequence and consumes the connection; a late connection may still pair with an
exec already applied after it; pending connections and applied execs expire by event-time progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from shellwatch.core.snapshot import Position
from shellwatch.ecs.events import BundledEvent, NetworkEvent, ProcessEvent

__all__ = ["Applied", "CorrelatorStats", "Held", "HostSequence", "Pairing", "Pending"]

_NEVER = -(2**63)  # below every valid timestamp, and within int64 for snapshots


@dataclass(frozen=True, slots=True)
class Pairing:
    """A completed sequence: the connection and the exec that completed it."""

    connection: NetworkEvent
    execution: ProcessEvent
    gap_ms: int
    late: bool


@dataclass(slots=True)
class CorrelatorStats:
    observed: int = 0
    qualifying_connections: int = 0
    qualifying_execs: int = 0
    no_host_id: int = 0
    no_timestamp: int = 0
    no_join_key: int = 0
    late: int = 0
    replaced_connections: int = 0
    expired_connections: int = 0
    evicted_connections: int = 0
    forced_releases: int = 0
    evicted_hosts: int = 0
    matches: int = 0


class Held(NamedTuple):
    """A qualifying event waiting in its host's heap; heap order is :attr:`position` order (``seq`` is unique, so
    the events are never compared)."""

    timestamp_ms: int
    rank: int
    seq: int
    event: BundledEvent

    @property
    def position(self) -> Position:
        return Position(self.timestamp_ms, self.rank, self.seq)


@dataclass(slots=True)
class Pending:
    """A connection waiting for an exec of its join key (its ``process.entity_id``)."""

    timestamp_ms: int
    seq: int
    event: NetworkEvent


@dataclass(slots=True)
class Applied:
    """A qualifying exec already applied, remembered so a late connection can still pair with it."""

    key: str  # the join key: the exec's process.parent.entity_id
    timestamp_ms: int
    seq: int
    event: ProcessEvent
    paired: bool


@dataclass(slots=True)
class HostSequence:
    """One host's sequence state. The correlator admits events to ``held``, advances the stream progress
    and decides when each held event is applied (:meth:`apply`)."""

    network_ms: int = _NEVER  # the host's network stream progress (newest @timestamp seen)
    process_ms: int = _NEVER
    held: list[Held] = field(default_factory=list)  # a heap
    released: Position | None = None  # the latest position applied in order
    pending: dict[str, Pending] = field(default_factory=dict)  # by the connection's process.entity_id
    recent_execs: list[Applied] = field(default_factory=list)  # in the order applied

    def apply(
        self,
        item: Held,
        out: list[Pairing],
        stats: CorrelatorStats,
        *,
        maxspan_ms: int,
        max_pending: int,
        late: bool = False,
    ) -> None:
        """Apply one qualifying event (in event-time order unless ``late``); completed sequences go to ``out``.

        ``max_pending`` bounds both the pending connections and the applied execs remembered."""
        ts, _, seq, event = item
        position = item.position
        if not late and (self.released is None or position > self.released):
            self.released = position
        if isinstance(event, NetworkEvent):
            new = Pending(ts, seq, event)
            self._apply_connection(new, out, stats, maxspan_ms=maxspan_ms, max_pending=max_pending, late=late)
            return
        assert isinstance(event, ProcessEvent) and event.parent_entity_id is not None
        key = event.parent_entity_id
        applied = Applied(key, ts, seq, event, paired=False)
        self.recent_execs.append(applied)
        if len(self.recent_execs) > max_pending:
            del self.recent_execs[0]
        pending = self.pending.get(key)
        if pending is None or pending.timestamp_ms > ts:
            return
        del self.pending[key]
        gap_ms = ts - pending.timestamp_ms
        if gap_ms > maxspan_ms:
            stats.expired_connections += 1
            return
        applied.paired = True
        stats.matches += 1
        out.append(Pairing(pending.event, event, gap_ms, late))

    def _apply_connection(
        self, new: Pending, out: list[Pairing], stats: CorrelatorStats, *, maxspan_ms: int, max_pending: int, late: bool
    ) -> None:
        assert new.event.entity_id is not None
        key = new.event.entity_id
        if late and self._pair_late_connection(key, new, out, stats, maxspan_ms):
            return
        current = self.pending.get(key)
        if current is not None:
            if (current.timestamp_ms, current.seq) > (new.timestamp_ms, new.seq):
                return  # a late, older connection: the newer one stands
            stats.replaced_connections += 1
            del self.pending[key]
        self.pending[key] = new
        while len(self.pending) > max_pending:
            del self.pending[next(iter(self.pending))]
            stats.evicted_connections += 1

    def _pair_late_connection(
        self, key: str, new: Pending, out: list[Pairing], stats: CorrelatorStats, maxspan_ms: int
    ) -> bool:
        """Pair a late connection with the first exec of its key already applied after it.

        In event-time order that exec would have met this connection (any connection between them
        would have paired with it instead, so it must be unpaired); if it paired with an older
        connection, the alert for that exec already exists (alert ids depend on the exec only).
        """
        first: Applied | None = None
        for applied in self.recent_execs:
            if (
                applied.key == key
                and applied.timestamp_ms >= new.timestamp_ms
                and (first is None or (applied.timestamp_ms, applied.seq) < (first.timestamp_ms, first.seq))
            ):
                first = applied
        if first is None:
            return False
        gap_ms = first.timestamp_ms - new.timestamp_ms
        if first.paired or gap_ms > maxspan_ms:
            return True
        first.paired = True
        stats.matches += 1
        out.append(Pairing(new.event, first.event, gap_ms, late=True))
        return True

    def expire(self, stats: CorrelatorStats, *, maxspan_ms: int, allowed_lateness_ms: int) -> None:
        """Forget pending connections no exec can still complete, and applied execs no late connection
        can still reach, by the host's event-time progress."""
        if self.released is None:
            return
        recent = self.recent_execs
        if recent:
            keep_from = self.released.timestamp_ms - maxspan_ms - allowed_lateness_ms
            drop = 0
            while drop < len(recent) and recent[drop].timestamp_ms < keep_from:
                drop += 1
            if drop:
                del recent[:drop]
        if not self.pending:
            return
        # Every exec still to be applied in order is held (>= the heap head) or yet to arrive (>= the
        # process stream's progress, streams being in order per host), and sorts after `released`.
        upcoming = min(self.process_ms, self.held[0].timestamp_ms) if self.held else self.process_ms
        horizon = max(self.released.timestamp_ms, upcoming) - maxspan_ms
        pending = self.pending
        while pending:
            key = next(iter(pending))
            if pending[key].timestamp_ms >= horizon:
                break
            del pending[key]
            stats.expired_connections += 1
