"""The sequence join of "Potential Reverse Shell via Java": pure, event-time, exact under disorder.

What it reproduces (DESIGN §3): per join key ``(host.id, process.entity_id)`` of a qualifying
connection = ``(host.id, process.parent.entity_id)`` of a qualifying exec, events are applied in
``(@timestamp ms, connections before execs, arrival)`` order; one pending connection per key, the
newest replaces an older one; an exec no later than ``maxspan_ms`` (inclusive) after the pending
connection completes the sequence and consumes the connection (that step, applied to one host's
state, is :mod:`shellwatch.core.host_sequence`).

How it stays exact while the two event kinds arrive interleaved (DESIGN §4): each host's network
and process streams are each in time order, but one may run ahead of the other. A qualifying event
is *held* until no event that sorts before it can still arrive for its host: a connection at ``t``
waits for the host's process stream to reach ``t``, an exec at ``t`` for the network stream to pass
``t``. A stream the caller declares idle (caught up, see :meth:`Correlator.stream_idle`) stops
holding anything back, and so does a lag beyond ``allowed_lateness_ms`` between a host's two streams.
An event that sorts before what its host already released is *late*: applied at once, best effort,
and counted. Progress is per host, so one host's clock never moves another host's state.

State is bounded: pending connections expire by their host's event-time progress, each host keeps at
most ``max_pending_per_host`` keys and ``max_held_per_host`` held events, and at most ``max_hosts``
hosts are tracked (least recently seen evicted first, after applying what it held). Every forced
eviction is counted in :class:`CorrelatorStats`. A host's state is exported to and restored from a
snapshot (the worker's changelog) through :mod:`shellwatch.core.snapshot`.

Whether an event qualifies is the rule's compiled stage predicate on the event's ``flat`` fields
(:mod:`shellwatch.core.stages`): events must be decoded under :attr:`Correlator.fields` (``Pipeline.decode``
does), which the snapshots' events are restored under too. A :class:`Match` carries each event's clauses,
worked out when the sequence completes.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from shellwatch.core.host_sequence import Applied, CorrelatorStats, Held, HostSequence, Pairing, Pending
from shellwatch.core.snapshot import CONNECTION, EXEC, HostSnapshot, restore, snapshot_of
from shellwatch.core.stages import explain, holds
from shellwatch.ecs.events import BundledEvent, Kind, NetworkEvent, ProcessEvent
from shellwatch.formats.event_codec import decode_fields
from shellwatch.rules.model import ReverseShellRule

__all__ = ["Correlator", "CorrelatorStats", "Match"]


@dataclass(frozen=True, slots=True)
class Match:
    """A completed sequence: the connection, the exec that completed it, and why each qualified."""

    connection: NetworkEvent
    execution: ProcessEvent
    connection_clauses: tuple[str, ...]
    execution_clauses: tuple[str, ...]
    gap_ms: int
    late: bool


class Correlator:
    def __init__(
        self,
        rule: ReverseShellRule,
        *,
        allowed_lateness_ms: int = 5000,
        max_hosts: int = 100_000,
        max_pending_per_host: int = 1024,
        max_held_per_host: int = 50_000,
    ) -> None:
        if allowed_lateness_ms < 0:
            raise ValueError(f"allowed_lateness_ms must be >= 0, got {allowed_lateness_ms}")
        for name, value in (
            ("max_hosts", max_hosts),
            ("max_pending_per_host", max_pending_per_host),
            ("max_held_per_host", max_held_per_host),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.rule = rule
        self.fields = decode_fields(rule.compiled.fields)  # what events must be decoded under
        self.allowed_lateness_ms = allowed_lateness_ms
        self.max_hosts = max_hosts
        self.max_pending_per_host = max_pending_per_host
        self.max_held_per_host = max_held_per_host
        self.stats = CorrelatorStats()
        self._hosts: OrderedDict[str, HostSequence] = OrderedDict()
        self._holding: set[str] = set()
        self._dirty: set[str] = set()
        self._seq = 0

    # -- public API ---------------------------------------------------------------------------

    def observe(self, event: BundledEvent) -> list[Match]:
        """Feed one event (in its stream's order); returns the sequences it let complete."""
        self.stats.observed += 1
        if event.host_id is None:
            self.stats.no_host_id += 1
            return []
        if event.timestamp_ms is None:
            self.stats.no_timestamp += 1
            return []
        out: list[Match] = []
        host = self._touch(event.host_id, out)
        self._dirty.add(event.host_id)
        ts = event.timestamp_ms
        if isinstance(event, NetworkEvent):
            host.network_ms = max(host.network_ms, ts)
            qualifies = holds(self.rule.network, event)
            key, rank = event.entity_id, CONNECTION
            if qualifies:
                self.stats.qualifying_connections += 1
        else:
            host.process_ms = max(host.process_ms, ts)
            qualifies = holds(self.rule.process, event)
            key, rank = event.parent_entity_id, EXEC
            if qualifies:
                self.stats.qualifying_execs += 1
        if qualifies:
            if key is None:
                self.stats.no_join_key += 1
            else:
                self._seq += 1
                self._admit(event.host_id, host, Held(ts, rank, self._seq, event), out)
        self._release(event.host_id, host, frozenset(), out)
        return out

    def stream_idle(self, kind: Kind, host_ids: Iterable[str] | None = None) -> list[Match]:
        """Declare that every ``kind`` event produced so far (for ``host_ids``, default all) was observed.

        Held events waiting only for that stream are released now.
        """
        targets = list(self._holding) if host_ids is None else [h for h in host_ids if h in self._holding]
        return self._release_idle(targets, frozenset((kind,)))

    def flush(self) -> list[Match]:
        """End of input: apply everything held, in order."""
        return self._release_idle(list(self._holding), frozenset(("network", "process")))

    @property
    def holding(self) -> AbstractSet[str]:
        """Hosts with events held back (the only ones :meth:`stream_idle` can change); a live view."""
        return self._holding

    def _release_idle(self, host_ids: list[str], idle: frozenset[Kind]) -> list[Match]:
        """Release what ``idle`` lets go. A host whose held events all stay changed nothing (what its last event
        expired is gone already), so it is not marked dirty: a progress marker would otherwise rewrite the state
        of every holding host of its partition, several times a second."""
        out: list[Match] = []
        for host_id in host_ids:
            host = self._hosts[host_id]
            before = len(host.held)
            self._release(host_id, host, idle, out)
            if len(host.held) != before:
                self._dirty.add(host_id)
        return out

    # -- state snapshots (the worker's changelog) --------------------------------------------

    def drain_dirty(self) -> set[str]:
        """Hosts whose state changed since the last call (evicted hosts included)."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def knows(self, host_id: str) -> bool:
        return host_id in self._hosts

    def progress_of(self, host_id: str) -> tuple[int, int, int | None] | None:
        """(network stream time, process stream time, @timestamp applied up to) of a known host, for diagnostics
        (a late event names how far its host had gone)."""
        host = self._hosts.get(host_id)
        if host is None:
            return None
        return host.network_ms, host.process_ms, None if host.released is None else host.released[0]

    def export_host(self, host_id: str) -> HostSnapshot | None:
        """The host's state, or ``None`` when it holds nothing worth keeping (or is unknown)."""
        host = self._hosts.get(host_id)
        if host is None or not (host.held or host.pending or host.recent_execs):
            return None
        return snapshot_of(
            network_ms=host.network_ms,
            process_ms=host.process_ms,
            released=host.released,
            pending=host.pending.values(),
            held=host.held,
            recent_execs=host.recent_execs,
        )

    def import_host(self, host_id: str, snapshot: HostSnapshot) -> list[Match]:
        """Restore a host's state (replacing what is known of it); events the rule no longer accepts
        are dropped. Returns the sequences that restoring let complete (held events may be ready)."""
        out: list[Match] = []
        self.forget_host(host_id)
        host = self._touch(host_id, out)
        state = restore(snapshot, self.fields)
        host.network_ms, host.process_ms, host.released = state.network_ms, state.process_ms, state.released
        for ts, seq, connection in state.pending:
            if holds(self.rule.network, connection) and connection.entity_id:
                host.pending[connection.entity_id] = Pending(ts, seq, connection)
        for ts, rank, seq, event in state.held:
            if self._holds(event):
                host.held.append(Held(ts, rank, seq, event))
        heapq.heapify(host.held)
        for ts, seq, execution, paired in state.recent_execs:
            if holds(self.rule.process, execution) and execution.parent_entity_id:
                host.recent_execs.append(Applied(execution.parent_entity_id, ts, seq, execution, paired))
        self._seq = max(self._seq, state.last_seq)
        if host.held:
            self._holding.add(host_id)
        self._release(host_id, host, frozenset(), out)
        return out

    def forget_host(self, host_id: str) -> None:
        """Drop a host's state without applying anything (its partition moved to another worker)."""
        self._hosts.pop(host_id, None)
        self._holding.discard(host_id)
        self._dirty.discard(host_id)

    @property
    def host_count(self) -> int:
        return len(self._hosts)

    @property
    def held_count(self) -> int:
        return sum(len(self._hosts[h].held) for h in self._holding)

    @property
    def pending_count(self) -> int:
        return sum(len(h.pending) for h in self._hosts.values())

    # -- internals ----------------------------------------------------------------------------

    def _holds(self, event: BundledEvent) -> bool:
        return holds(self.rule.network if isinstance(event, NetworkEvent) else self.rule.process, event)

    def _touch(self, host_id: str, out: list[Match]) -> HostSequence:
        host = self._hosts.get(host_id)
        if host is not None:
            self._hosts.move_to_end(host_id)
            return host
        host = self._hosts[host_id] = HostSequence()
        while len(self._hosts) > self.max_hosts:
            old_id, old = next(iter(self._hosts.items()))
            while old.held:
                self._apply(old, heapq.heappop(old.held), out)
            del self._hosts[old_id]
            self._holding.discard(old_id)
            self._dirty.add(old_id)
            self.stats.evicted_hosts += 1
        return host

    def _admit(self, host_id: str, host: HostSequence, item: Held, out: list[Match]) -> None:
        if host.released is not None and item.position < host.released:
            self.stats.late += 1
            self._apply(host, item, out, late=True)
            return
        heapq.heappush(host.held, item)
        self._holding.add(host_id)
        while len(host.held) > self.max_held_per_host:
            self.stats.forced_releases += 1
            self._apply(host, heapq.heappop(host.held), out)

    def _release(self, host_id: str, host: HostSequence, idle: frozenset[Kind], out: list[Match]) -> None:
        held = host.held
        while held:
            ts, rank = held[0].timestamp_ms, held[0].rank
            if rank == CONNECTION:
                ready = "process" in idle or host.process_ms >= ts
            else:
                ready = "network" in idle or host.network_ms > ts
            if not ready and max(host.network_ms, host.process_ms) - ts <= self.allowed_lateness_ms:
                break
            self._apply(host, heapq.heappop(held), out)
        if not held:
            self._holding.discard(host_id)
        self._expire(host)

    def _apply(self, host: HostSequence, item: Held, out: list[Match], *, late: bool = False) -> None:
        pairings: list[Pairing] = []
        rule = self.rule
        max_pending = self.max_pending_per_host
        host.apply(item, pairings, self.stats, maxspan_ms=rule.maxspan_ms, max_pending=max_pending, late=late)
        for p in pairings:
            network, process = explain(rule.network, p.connection), explain(rule.process, p.execution)
            out.append(Match(p.connection, p.execution, network, process, p.gap_ms, p.late))

    def _expire(self, host: HostSequence) -> None:
        host.expire(self.stats, maxspan_ms=self.rule.maxspan_ms, allowed_lateness_ms=self.allowed_lateness_ms)
