"""Host-local EQL rules over several live inputs, per host, exact under the inputs' lag, with per-host snapshots.

The worker's form of :class:`~shellwatch.core.rule_runner.RuleRunner`: the same stages, exceptions, order and
sequence semantics (:mod:`shellwatch.core.event_order`, :mod:`shellwatch.core.sequence_engine`), for rules
whose join is host-local (the worker partitions by ``host.id``, so only those can run there; a rule that is
not is refused here with the reason). What differs is when an event is certain of its place:

- Each input (a topic, or an event category of a mixed topic) is in time order per host; one input may run
  ahead of another. A host's candidates of millisecond ``t`` are *held* until every other input of that host
  has gone past ``t`` (an event newer than ``t``, or :meth:`HostRules.advance` saying the input has been read
  past ``t``), so nothing that sorts before them can still arrive; their own input is read in order, so what
  comes later on it sorts after them (as the bundled correlator lets a connection go once the process input is
  past it). A millisecond holding candidates of several inputs waits for each of them to go past it. Then it
  is released in the order of :func:`~shellwatch.core.event_order.order_millisecond` and applied.
- An input declared idle (:meth:`HostRules.stream_idle`: caught up, nothing more produced; a progress marker)
  holds nothing back at that moment; a lag beyond ``allowed_lateness_ms`` between a host's newest event and a
  held one releases it too (counted as ``lateness_releases``).
- An event older than what its host already released is *late*: applied at once, best effort, counted.

Progress, order and eviction are per host, so one host's clock never moves another host's state. State is
bounded: ``max_held_per_host`` held candidates (beyond it the oldest millisecond goes early, counted), each
rule's ``max_keys`` join keys (least recently written evicted, counted by the engine), and ``max_hosts`` hosts
(least recently seen evicted after applying what it held). A host's state (inputs' progress, held candidates,
waiting sequences of every rule) exports to a JSON-ready snapshot and restores from one; a restored event is
decoded and tested again, so one a changed rule no longer accepts is dropped. Pure code.
"""

from __future__ import annotations

import heapq
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from typing import Any

from shellwatch.core.event_order import order_millisecond
from shellwatch.core.rule_candidates import RuleCandidates
from shellwatch.core.rule_events import RuleEvent, RuleEventError, decode_rule_event, rules_fields
from shellwatch.core.sequence_engine import Candidate, SequenceEngine, SequenceMatch
from shellwatch.errors import NotHostLocalError
from shellwatch.rules.eql_rule import EqlRule

__all__ = [
    "SNAPSHOT_VERSION",
    "HostOutcome",
    "HostRules",
    "HostRulesStats",
    "NotHostLocalError",
    "RuleMatch",
    "not_host_local",
]

SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: EqlRule
    match: SequenceMatch


@dataclass(frozen=True, slots=True)
class HostOutcome:
    matches: list[RuleMatch]
    error: RuleEventError | None = None


@dataclass(slots=True)
class HostRulesStats:
    observed: int = 0
    undecodable: Counter[str] = field(default_factory=Counter)
    no_host_id: int = 0
    candidates: int = 0
    late: int = 0
    lateness_releases: int = 0
    forced_releases: int = 0
    evicted_hosts: int = 0
    restored_dropped: int = 0  # snapshot events or sequences a changed rule no longer accepts
    excepted: Counter[tuple[str, str]] = field(default_factory=Counter)
    matches: Counter[str] = field(default_factory=Counter)  # per rule id
    stage_events: Counter[tuple[str, int]] = field(default_factory=Counter)  # (rule id, query stage) -> events


@dataclass(slots=True)
class _Host:
    progress: dict[str, int] = field(default_factory=dict)  # input -> how far it has been read (event time)
    held: list[tuple[int, int, int, Candidate]] = field(default_factory=list)  # (ts, seq, rule index, candidate)
    released_below: int | None = None  # everything older was applied: an older arrival is late
    evicted_at: dict[int, int] = field(default_factory=dict)  # rule index -> event time of its last sweep
    held_sources: Counter[tuple[int, str]] = field(default_factory=Counter)  # (ms, input) -> held candidates


def not_host_local(rule: EqlRule) -> str | None:
    """Why a rule cannot run per host (``None``: it can)."""
    compiled = rule.compiled
    if not compiled.is_sequence or compiled.host_local:
        return None
    keys = " | ".join(",".join(stage.keys) or "-" for stage in compiled.stages)
    return (
        f"rule {rule.rule_id} ({rule.file}) joins on {keys}: no key position is host.id, host.name or an "
        "entity id on every stage, so one sequence may span hosts, and the worker partitions by host.id"
    )


class HostRules:
    def __init__(
        self,
        rules: Sequence[EqlRule],
        inputs: Iterable[str],
        *,
        allowed_lateness_ms: int = 5000,
        max_hosts: int = 100_000,
        max_held_per_host: int = 50_000,
        max_keys_per_rule: int = 100_000,
    ) -> None:
        refused = [reason for reason in map(not_host_local, rules) if reason is not None]
        if refused:
            raise NotHostLocalError("; ".join(refused))
        if allowed_lateness_ms < 0 or max_hosts < 1 or max_held_per_host < 1:
            raise ValueError("allowed_lateness_ms must be >= 0, max_hosts and max_held_per_host >= 1")
        self.rules = tuple(rules)
        self.inputs = tuple(dict.fromkeys(inputs))
        if not self.inputs:
            raise ValueError("at least one input")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.max_hosts = max_hosts
        self.max_held_per_host = max_held_per_host
        self.stats = HostRulesStats()
        self._candidates = [RuleCandidates(rule, self.stats.excepted) for rule in self.rules]
        self._fields = rules_fields(self.rules)  # one flatten per record for every rule
        self._engines = [SequenceEngine(rule.compiled, max_keys=max_keys_per_rule) for rule in self.rules]
        self._rule_index = {rule.rule_id: index for index, rule in enumerate(self.rules)}
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        self._holding: set[str] = set()
        self._dirty: set[str] = set()
        self._seq = 0

    # -- input ----------------------------------------------------------------------------------

    def observe(self, raw: bytes, source: str, *, replayed: bool = False) -> HostOutcome:
        """One record of input ``source`` (in that input's order for its host): the matches it let complete, or
        why it cannot be decoded. ``replayed``: ``shellwatch replay`` produced it (kept in snapshots too)."""
        self.stats.observed += 1
        self._seq += 1
        event = decode_rule_event(raw, self._seq, self._fields, replayed=replayed)
        if isinstance(event, RuleEventError):
            self.stats.undecodable[event.reason] += 1
            return HostOutcome([], event)
        host_id = event.host_id
        if host_id is None:
            self.stats.no_host_id += 1
            return HostOutcome([])
        out: list[RuleMatch] = []
        host = self._touch(host_id, out)
        ts = event.timestamp_ms
        host.progress[source] = max(host.progress.get(source, ts), ts)
        for index, candidates in enumerate(self._candidates):
            candidate = candidates.candidate(event, source)
            if candidate is None:
                continue
            self.stats.candidates += 1
            for stage in candidate.stages:
                self.stats.stage_events[self.rules[index].rule_id, stage] += 1
            self._dirty.add(host_id)
            if not self.rules[index].compiled.is_sequence:
                self._apply(host_id, index, candidate, out)
            elif host.released_below is not None and ts < host.released_below:
                self.stats.late += 1
                self._apply(host_id, index, replace(candidate, late=True), out)
            else:
                heapq.heappush(host.held, (ts, candidate.seq, index, candidate))
                host.held_sources[ts, source] += 1
                self._holding.add(host_id)
        self._release(host_id, host, frozenset(), out)
        return HostOutcome(out)

    def advance(self, source: str, time_ms: int, host_ids: Iterable[str] | None = None) -> list[RuleMatch]:
        """Input ``source`` has been read up to ``time_ms`` for ``host_ids`` (default: every holding host)."""
        out: list[RuleMatch] = []
        for host_id in self._targets(host_ids):
            host = self._hosts[host_id]
            if host.progress.get(source, time_ms - 1) < time_ms:
                host.progress[source] = time_ms
                self._dirty.add(host_id)
            self._release(host_id, host, frozenset(), out)
        return out

    def stream_idle(self, sources: Collection[str], host_ids: Iterable[str] | None = None) -> list[RuleMatch]:
        """Inputs ``sources`` are caught up (everything produced so far was observed): they hold nothing back now
        (a progress marker; the next event on them counts again)."""
        out: list[RuleMatch] = []
        idle = frozenset(sources)
        for host_id in self._targets(host_ids):
            host = self._hosts[host_id]
            before = len(host.held)
            self._release(host_id, host, idle, out)
            if len(host.held) != before:
                self._dirty.add(host_id)
        return out

    def flush(self) -> list[RuleMatch]:
        """End of input: apply everything held, in order."""
        return self._release_all(list(self._holding))

    # -- state ------------------------------------------------------------------------------------

    @property
    def holding(self) -> AbstractSet[str]:
        """Hosts with candidates held back (the only ones :meth:`stream_idle` can change); a live view."""
        return self._holding

    def knows(self, host_id: str) -> bool:
        return host_id in self._hosts

    @property
    def host_count(self) -> int:
        return len(self._hosts)

    @property
    def held_count(self) -> int:
        return sum(len(self._hosts[h].held) for h in self._holding)

    def pending_count(self) -> int:
        return sum(engine.pending_count() for engine in self._engines)

    def per_rule(self) -> list[tuple[str, int, int]]:
        """(rule id, sequences waiting, join keys evicted by the cap) of every rule."""
        return [
            (r.rule_id, e.pending_count(), e.evicted_by_cap) for r, e in zip(self.rules, self._engines, strict=True)
        ]

    def drain_dirty(self) -> set[str]:
        """Hosts whose state changed since the last call (evicted hosts included: their export is ``None``)."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    def export_host(self, host_id: str) -> dict[str, Any] | None:
        """The host's state as JSON-ready data, or ``None`` when it is unknown or holds nothing worth keeping."""
        host = self._hosts.get(host_id)
        if host is None:
            return None
        pending = [
            [self.rules[index].rule_id, position, [_event(c) for c in events]]
            for index, engine in enumerate(self._engines)
            for position, events in engine.scope_pending(host_id)
        ]
        if not host.held and not pending:
            return None
        held = [[self.rules[index].rule_id, _event(c)] for _, _, index, c in sorted(host.held, key=lambda h: h[:3])]
        return {
            "v": SNAPSHOT_VERSION,
            "progress": dict(host.progress),
            "released_below": host.released_below,
            "held": held,
            "pending": pending,
        }

    def import_host(self, host_id: str, snapshot: dict[str, Any]) -> list[RuleMatch]:
        """Restore a host from :meth:`export_host`'s data, replacing what is known of it; the matches that
        restoring let complete (held events may be ready). Raises ``ValueError`` on data of another version."""
        if snapshot.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"host snapshot version {snapshot.get('v')!r}, expected {SNAPSHOT_VERSION}")
        out: list[RuleMatch] = []
        self.forget_host(host_id)
        host = self._touch(host_id, out)
        host.progress = {str(k): int(v) for k, v in snapshot["progress"].items()}
        released = snapshot["released_below"]
        host.released_below = None if released is None else int(released)
        for rule_id, data in snapshot["held"]:
            index = self._rule_index.get(rule_id)
            candidate = None if index is None else self._restored(index, data)
            if index is None or candidate is None:
                self.stats.restored_dropped += 1
                continue
            heapq.heappush(host.held, (candidate.timestamp_ms, candidate.seq, index, candidate))
            host.held_sources[candidate.timestamp_ms, candidate.source] += 1
        for rule_id, position, events in snapshot["pending"]:
            index = self._rule_index.get(rule_id)
            restored = [] if index is None else [self._restored(index, data) for data in events]
            candidates = [c for c in restored if c is not None]
            if index is None or len(candidates) != len(events):
                self.stats.restored_dropped += 1
                continue
            if not self._engines[index].restore(int(position), candidates, host_id):
                self.stats.restored_dropped += 1
        if host.held:
            self._holding.add(host_id)
        self._release(host_id, host, frozenset(), out)
        return out

    def forget_host(self, host_id: str) -> None:
        """Drop a host's state without applying anything (its partition moved to another worker)."""
        self._hosts.pop(host_id, None)
        self._holding.discard(host_id)
        self._dirty.discard(host_id)
        for engine in self._engines:
            engine.drop_scope(host_id)

    # -- internals ----------------------------------------------------------------------------------

    def _targets(self, host_ids: Iterable[str] | None) -> list[str]:
        if host_ids is None:
            return list(self._holding)
        return [h for h in host_ids if h in self._hosts]

    def _restored(self, index: int, data: list[Any]) -> Candidate | None:
        seq, source, raw = int(data[0]), str(data[1]), str(data[2]).encode()
        event = decode_rule_event(raw, seq, self._fields, replayed=len(data) > 3 and data[3] is True)
        if not isinstance(event, RuleEvent):
            return None
        self._seq = max(self._seq, seq)
        return self._candidates[index].candidate(event, source)

    def _touch(self, host_id: str, out: list[RuleMatch]) -> _Host:
        host = self._hosts.get(host_id)
        if host is not None:
            self._hosts.move_to_end(host_id)
            return host
        host = self._hosts[host_id] = _Host()
        while len(self._hosts) > self.max_hosts:
            old_id = next(iter(self._hosts))
            self._release_all([old_id], out)
            self.forget_host(old_id)
            self._dirty.add(old_id)
            self.stats.evicted_hosts += 1
        return host

    def _release_all(self, host_ids: list[str], out: list[RuleMatch] | None = None) -> list[RuleMatch]:
        out = [] if out is None else out
        for host_id in host_ids:
            host = self._hosts[host_id]
            if host.held:
                self._release(host_id, host, frozenset(self.inputs), out)
                self._dirty.add(host_id)
        return out

    def _ready(self, host: _Host, millisecond: int, idle: frozenset[str]) -> bool:
        """Whether a held millisecond is certain of its place: every input of the host is idle, has been read
        past it, or is the only input its candidates come from. An input not read yet holds the others back."""
        behind = [
            source for source in self.inputs if source not in idle and host.progress.get(source, _NEVER) <= millisecond
        ]
        if not behind:
            return True
        if len(behind) > 1:
            return False
        own = behind[0]
        return all(not host.held_sources[millisecond, other] for other in self.inputs if other != own)

    def _release(self, host_id: str, host: _Host, idle: frozenset[str], out: list[RuleMatch]) -> None:
        held = host.held
        if held:
            newest = max(host.progress.values(), default=held[0][0])
            while held:
                millisecond = held[0][0]
                if not self._ready(host, millisecond, idle):
                    if newest - millisecond <= self.allowed_lateness_ms:
                        break
                    self.stats.lateness_releases += 1
                self._release_millisecond(host_id, host, out)
            while len(held) > self.max_held_per_host:
                self.stats.forced_releases += 1
                self._release_millisecond(host_id, host, out)
        if not held:
            self._holding.discard(host_id)

    def _release_millisecond(self, host_id: str, host: _Host, out: list[RuleMatch]) -> None:
        held = host.held
        millisecond = held[0][0]
        by_rule: dict[int, list[Candidate]] = {}
        while held and held[0][0] == millisecond:
            _, _, index, candidate = heapq.heappop(held)
            by_rule.setdefault(index, []).append(candidate)
            host.held_sources.pop((millisecond, candidate.source), None)
        below = millisecond + 1
        host.released_below = below if host.released_below is None else max(host.released_below, below)
        self._dirty.add(host_id)
        for index in sorted(by_rule):
            for candidate in order_millisecond(by_rule[index]):
                self._apply(host_id, index, candidate, out)
            self._sweep(host_id, host, index, millisecond)

    def _apply(self, host_id: str, index: int, candidate: Candidate, out: list[RuleMatch]) -> None:
        rule = self.rules[index]
        for match in self._engines[index].apply(candidate, host_id):
            self.stats.matches[rule.rule_id] += 1
            out.append(RuleMatch(rule, match))

    def _sweep(self, host_id: str, host: _Host, index: int, now_ms: int) -> None:
        """Drop the host's sequences of rule ``index`` that can no longer complete (once per maxspan of its time)."""
        engine = self._engines[index]
        if engine.maxspan_ms is None:
            return
        last = host.evicted_at.get(index)
        if last is None:
            host.evicted_at[index] = now_ms
        elif now_ms - last >= engine.maxspan_ms:
            engine.evict(now_ms - self.allowed_lateness_ms, host_id)
            host.evicted_at[index] = now_ms


_NEVER = -(2**63)  # no event read yet on an input: it holds the other inputs' candidates back


def _event(candidate: Candidate) -> list[Any]:
    event: RuleEvent = candidate.payload
    entry: list[Any] = [candidate.seq, candidate.source, event.raw.decode()]
    return [*entry, True] if event.replayed else entry  # a 4th element only when replayed: older readers ignore it
