"""What the correlation agent does with one record, apart from Kafka: decode, correlate, keep state.

The agent hands over each record of the relevant topic (forwarded events and the pre-filter stage's
progress markers) with its partition; this class runs the core and mirrors every host's sequence
state into a key-value store (the worker's changelog-backed table), so a restarted or re-balanced
worker resumes exactly where the previous owner of the partition stopped. Alerts must be delivered
before :meth:`CorrelationRuntime.persist` is called, so a crash in between repeats an alert (same id)
rather than losing it.

Replays are idempotent. After a crash the prefilter stage re-forwards records it had forwarded but not
committed (at new offsets of the relevant topic), and the agent re-reads records whose offsets it had not
committed. Each host's state remembers, per *source* topic partition (the ``shellwatch.source`` header), the
newest offset it applied and that record's timestamp; a record at or below that offset, and not newer than
that timestamp (a re-created topic starts its offsets again, with newer timestamps), was applied already and
is skipped, so a replayed connection can never pair twice. The memory lives in the host's state value, so it
is written together with the state it describes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from shellwatch.core.correlate import Match
from shellwatch.core.host_rules import RuleMatch
from shellwatch.core.pipeline import Pipeline
from shellwatch.core.snapshot import HostSnapshot, SnapshotError, empty_snapshot
from shellwatch.ecs.events import Event
from shellwatch.errors import UnusableRecordError
from shellwatch.formats.event_codec import DecodeError
from shellwatch.kafka.headers import AS_OF_HEADER, BROKER_TS_HEADER, PROGRESS_HEADER, REPLAY_HEADER, SOURCE_HEADER
from shellwatch.worker.alert_latency import RecordTimes

__all__ = ["CorrelationRuntime", "StateStore", "UnusableRecordError"]

log = logging.getLogger("shellwatch.worker.runtime")

# A marker's "caught up as of" is trusted for a host only when the host's newest record was written at
# least this long before it: records written just before that one may reach the broker a moment later.
MARKER_MARGIN_MS = 200
_CLOCK_AHEAD_MS = 2_000  # a record stamped further ahead of the marker than this: clocks differ, don't wait
# another input's marker counts with this one when it is at most this much older (stage 1 sends a marker for
# each caught-up partition every 250 ms; a partition that falls behind stops sending them)
MARK_FRESH_MS = 1_000


class StateStore(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, value: bytes) -> None: ...
    def delete(self, key: str) -> None: ...
    def items(self) -> Iterable[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class _HostState:
    """One table value: the host's partition, its sequence state and its alert groups (JSON lines)."""

    partition: int
    sequence: HostSnapshot | None
    groups: bytes | None

    def to_bytes(self) -> bytes:
        sequence = self.sequence.to_bytes() if self.sequence is not None else b""
        return b"%d\n%s\n%s" % (self.partition, sequence, self.groups or b"")

    @classmethod
    def from_bytes(cls, value: bytes) -> _HostState:
        head, _, rest = value.partition(b"\n")
        sequence, _, groups = rest.partition(b"\n")
        try:
            return cls(int(head), HostSnapshot.from_bytes(sequence) if sequence else None, groups or None)
        except ValueError as exc:
            raise SnapshotError(f"bad state record: {exc}") from None


class CorrelationRuntime:
    def __init__(self, pipeline: Pipeline, store: StateStore) -> None:
        self.pipeline = pipeline
        self.store = store
        self.needs_reload = True
        self.bad_state_records = 0
        rule_ids = [pipeline.rule.meta.id] + ([pipeline.shell_rule.meta.id] if pipeline.shell_rule else [])
        self.record_times = RecordTimes(rule_ids)  # alert id -> Kafka timestamp of its exec's record
        self._partition_of: dict[str, int] = {}
        self._hosts_in: defaultdict[int, set[str]] = defaultdict(set)
        self._newest_record_ms: dict[str, int] = {}  # per host: Kafka timestamp of its newest input record
        self._applied: dict[str, dict[str, tuple[int, int]]] = {}  # per host, source: (offset, record ms) applied
        self.skipped_replays = 0  # events of records this state had applied already
        self._rule_matches: list[RuleMatch] = []  # the operator's rules' matches that restoring hosts completed
        self._caught_up: dict[int, dict[str, int]] = {}  # relevant partition -> input -> as_of of its last marker

    def reload(self, partitions: set[int], detected_ms: int) -> list[dict[str, Any]]:
        """After a rebalance: forget hosts of partitions this worker lost, restore those it gained."""
        correlator = self.pipeline.correlator
        self._caught_up = {p: marks for p, marks in self._caught_up.items() if p in partitions}
        for partition in [p for p in self._hosts_in if p not in partitions]:
            for host_id in self._hosts_in.pop(partition):
                correlator.forget_host(host_id)
                if self.pipeline.host_rules is not None:
                    self.pipeline.host_rules.forget_host(host_id)
                self._newest_record_ms.pop(host_id, None)
                self._applied.pop(host_id, None)
                if self.pipeline.grouper is not None:
                    self.pipeline.grouper.forget_host(host_id)
                self._partition_of.pop(host_id, None)
        matches = []
        for host_id, value in list(self.store.items()):
            if host_id in self._partition_of:
                continue
            try:
                state = _HostState.from_bytes(value)
            except SnapshotError:
                self.bad_state_records += 1
                continue
            if state.partition in partitions:
                self._place(host_id, state.partition)
                matches.extend(self._restore(host_id, state))
        self.needs_reload = False
        return self.pipeline.alerts_for(matches, detected_ms) + self._restored_rule_alerts(detected_ms)

    def _restored_rule_alerts(self, detected_ms: int) -> list[dict[str, Any]]:
        matches, self._rule_matches = self._rule_matches, []
        return self.pipeline.rule_alerts(matches, detected_ms) if matches else []

    def _restore(self, host_id: str, state: _HostState) -> list[Match]:
        matches = []
        if state.sequence is not None:
            matches = self.pipeline.correlator.import_host(host_id, state.sequence)
            host_rules = self.pipeline.host_rules
            if host_rules is not None and state.sequence.rules is not None:
                try:
                    self._rule_matches.extend(host_rules.import_host(host_id, dict(state.sequence.rules)))
                except (ValueError, KeyError, TypeError):
                    self.bad_state_records += 1
            if state.sequence.sources:
                self._applied[host_id] = {name: (offset, ts) for name, offset, ts in state.sequence.sources}
                # the newest input record applied, so a progress marker right after it gets the margin (see _progress)
                newest = max(ts for _, _, ts in state.sequence.sources)
                self._newest_record_ms[host_id] = max(newest, self._newest_record_ms.get(host_id, newest))
        if state.groups is not None and self.pipeline.grouper is not None:
            try:
                self.pipeline.grouper.import_host(host_id, state.groups)
            except ValueError:
                self.bad_state_records += 1
        return matches

    def handle(
        self,
        value: bytes | None,
        headers: Mapping[str, bytes],
        partition: int,
        detected_ms: int,
        record_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """The alerts one record completes. Raises :class:`UnusableRecordError` for an unusable record.

        ``record_ms``: the Kafka timestamp of the input record (for the detection-latency metric).
        """
        progress = headers.get(PROGRESS_HEADER)
        if progress is not None:
            return self._progress(progress, partition, detected_ms, _as_of(headers))
        if value is None:
            raise UnusableRecordError("empty", "record without a value")
        decoded = self.pipeline.decode(value)
        if isinstance(decoded, DecodeError):
            raise UnusableRecordError(decoded.reason, decoded.message)
        events = decoded.events
        if REPLAY_HEADER in headers:
            events = tuple(replace(event, replayed=True) for event in events)
        for event in events:
            host_id = event.host_id
            if host_id is None or host_id in self._partition_of:
                continue
            self._place(host_id, partition)
            stored = self.store.get(host_id)
            if stored is not None:
                try:
                    self._restore(host_id, _HostState.from_bytes(stored))
                except SnapshotError:
                    self.bad_state_records += 1
        source = _source(headers)
        if source is not None:
            fresh = tuple(e for e in events if not self._applied_already(e.host_id, source))
            self.skipped_replays += len(events) - len(fresh)
            events = fresh
        if record_ms is not None:
            self.record_times.note(events, record_ms)
        for event in events:
            host_id = event.host_id
            if host_id is None:
                continue
            if record_ms is not None:
                self._newest_record_ms[host_id] = max(record_ms, self._newest_record_ms.get(host_id, record_ms))
            if source is not None:
                self._applied.setdefault(host_id, {})[source[0]] = source[1:]
        stats = self.pipeline.correlator.stats
        late = stats.late
        alerts = self._restored_rule_alerts(detected_ms) + self.pipeline.observe(events, detected_ms)
        if stats.late != late:
            self._log_late(events, partition, headers)
        return alerts + self.pipeline.observe_rules(events, detected_ms)

    def _log_late(self, events: tuple[Event, ...], partition: int, headers: Mapping[str, bytes]) -> None:
        """An event applied after its host had gone past it (beyond the allowed lateness, or after a progress
        marker said its stream was caught up): it may have missed its pairing. Says where it came from."""
        source = headers.get(SOURCE_HEADER, b"-").decode("utf-8", "replace")
        for event in events:
            progress = None if event.host_id is None else self.pipeline.correlator.progress_of(event.host_id)
            if progress is not None:
                network_ms, process_ms, released_ms = progress
                log.warning(
                    "late %s event on relevant partition %d (source %s): host %s, @timestamp %s ms; the host had "
                    "applied up to %s ms (network stream at %d ms, process stream at %d ms)",
                    event.kind,
                    partition,
                    source,
                    event.host_id,
                    event.timestamp_ms,
                    released_ms,
                    network_ms,
                    process_ms,
                )

    def _applied_already(self, host_id: str | None, source: tuple[str, int, int]) -> bool:
        if host_id is None:
            return False
        name, offset, record_ms = source
        applied = self._applied.get(host_id, {}).get(name)
        return applied is not None and offset <= applied[0] and record_ms <= applied[1]

    def persist(self) -> None:
        """Write every changed host's state to the store (or delete it once nothing is left)."""
        correlator, grouper, host_rules = self.pipeline.correlator, self.pipeline.grouper, self.pipeline.host_rules
        dirty = correlator.drain_dirty() | (grouper.drain_dirty() if grouper is not None else set())
        if host_rules is not None:
            dirty |= host_rules.drain_dirty()
        for host_id in dirty:
            sequence = correlator.export_host(host_id)
            rules = host_rules.export_host(host_id) if host_rules is not None else None
            if rules is not None:
                sequence = replace(sequence or empty_snapshot(), rules=rules)
            groups = grouper.export_host(host_id) if grouper is not None else None
            partition = self._partition_of.get(host_id)
            applied = self._applied.get(host_id)
            if sequence is not None and applied:
                sequence = replace(sequence, sources=tuple((name, *at) for name, at in sorted(applied.items())))
            if (sequence is not None or groups is not None) and partition is not None:
                self.store.put(host_id, _HostState(partition, sequence, groups).to_bytes())
            else:
                self.store.delete(host_id)
                known = (
                    correlator.knows(host_id)
                    or (grouper is not None and grouper.knows(host_id))
                    or (host_rules is not None and host_rules.knows(host_id))
                )
                if not known and partition is not None:
                    self._hosts_in[partition].discard(host_id)
                    self._partition_of.pop(host_id, None)
                    self._newest_record_ms.pop(host_id, None)
                    self._applied.pop(host_id, None)

    def _progress(self, kinds: bytes, partition: int, detected_ms: int, as_of_ms: int | None) -> list[dict[str, Any]]:
        """A source partition is caught up: its hosts stop waiting for that stream, except hosts whose newest
        record was written too shortly before the fetch that found it caught up (they wait for the next).

        The bundled rules read two inputs, so the marker's own inputs are all they need. The operator's rules may
        read more (``file`` ...), and a held event then waits for every other input at once: so each marker is
        remembered per partition and input, and the inputs whose latest marker is at most ``MARK_FRESH_MS``
        older than this one's, and vouches for the host by the same rule, count as caught up with it."""
        named = {part.strip().decode("utf-8", "replace") for part in kinds.split(b",")}
        inputs = self.pipeline.inputs
        marked = [kind for kind in inputs if kind in named]
        if as_of_ms is not None:
            marks = self._caught_up.setdefault(partition, {})
            for kind in marked:
                marks[kind] = max(as_of_ms, marks.get(kind, as_of_ms))
        placed = self._hosts_in.get(partition)
        if not placed:
            return []
        host_rules = self.pipeline.host_rules
        bundled = self.pipeline.correlator.holding & placed  # only a host holding events back can be released
        ruled = host_rules.holding & placed if host_rules is not None else set()
        if as_of_ms is None:  # a marker of an older stage 1, without its time: this marker's inputs, every host
            return self.pipeline.bundled_idle(marked, detected_ms, list(bundled)) + self.pipeline.rules_idle(
                marked, detected_ms, list(ruled)
            )
        alerts = self.pipeline.bundled_idle(marked, detected_ms, [h for h in bundled if self._vouches(as_of_ms, h)])
        fresh = {kind: at for kind, at in self._caught_up[partition].items() if at >= as_of_ms - MARK_FRESH_MS}
        groups: dict[tuple[str, ...], list[str]] = {}
        for host_id in ruled:
            idle = tuple(kind for kind in inputs if kind in fresh and self._vouches(fresh[kind], host_id))
            if idle:
                groups.setdefault(idle, []).append(host_id)
        for idle, hosts in groups.items():
            alerts += self.pipeline.rules_idle(idle, detected_ms, hosts)
        return alerts

    def _vouches(self, as_of_ms: int, host_id: str) -> bool:
        """Whether a marker caught up as of ``as_of_ms`` vouches for the host: its newest record was written at
        least ``MARKER_MARGIN_MS`` before (or so far after that the clocks differ)."""
        newest = self._newest_record_ms.get(host_id, 0)
        return not as_of_ms - MARKER_MARGIN_MS < newest <= as_of_ms + _CLOCK_AHEAD_MS

    def _place(self, host_id: str, partition: int) -> None:
        previous = self._partition_of.get(host_id)
        if previous is not None and previous != partition:
            self._hosts_in[previous].discard(host_id)
        self._partition_of[host_id] = partition
        self._hosts_in[partition].add(host_id)


def _source(headers: Mapping[str, bytes]) -> tuple[str, int, int] | None:
    """(source ``topic/partition``, offset, record timestamp) of a forwarded record; None if not forwarded."""
    raw, broker_ts = headers.get(SOURCE_HEADER), headers.get(BROKER_TS_HEADER)
    if raw is None or broker_ts is None:
        return None
    name, _, offset = raw.decode("utf-8", "replace").rpartition("/")
    try:
        return name, int(offset), int(broker_ts)
    except ValueError:
        return None


def _as_of(headers: Mapping[str, bytes]) -> int | None:
    try:
        return int(headers[AS_OF_HEADER])
    except (KeyError, ValueError):
        return None
