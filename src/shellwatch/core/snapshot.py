"""One host's sequence state outside the correlator: exported as a snapshot, and restored from one.

The correlator (:mod:`shellwatch.core.correlate`) is the sequence engine; this module is its state at rest.
:func:`snapshot_of` turns a host's entries into a :class:`HostSnapshot`: the events as received (raw
bytes) plus the ordering data the correlator keeps, which :meth:`HostSnapshot.to_bytes` writes for the
worker's changelog-backed table. :func:`restore` turns a snapshot back into typed events
(:class:`RestoredHost`), decoding each again with :mod:`shellwatch.formats.event_codec` (under the fields the
caller's rule reads); the correlator
then re-checks them against the loaded rule, so a snapshot taken under an older rule version cannot
smuggle in an event the current rule rejects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol, TypeVar

import orjson

from shellwatch.ecs.events import BundledEvent, NetworkEvent, ProcessEvent
from shellwatch.ecs.fields import FieldSet
from shellwatch.errors import SnapshotError
from shellwatch.formats.event_codec import MODEL_FIELDS, Decoded, decode_fields, decode_json_event

__all__ = [
    "CONNECTION",
    "EXEC",
    "AppliedExec",
    "HeldEvent",
    "HostSnapshot",
    "PendingConnection",
    "Position",
    "RestoredHost",
    "SnapshotError",
    "empty_snapshot",
    "restore",
    "snapshot_of",
]

_VERSION = 1
CONNECTION, EXEC = 0, 1  # ranks: at equal timestamps, a host's connections apply before its execs


class Position(NamedTuple):
    """Where an event sorts among its host's events: ``@timestamp`` ms, then its rank (connections before
    execs), then its arrival number. Compares as the plain ``(timestamp_ms, rank, seq)`` tuple."""

    timestamp_ms: int
    rank: int
    seq: int


class PendingConnection(NamedTuple):
    """A connection waiting for an exec of its join key."""

    timestamp_ms: int
    seq: int
    event: NetworkEvent


class HeldEvent(NamedTuple):
    """A qualifying event not applied yet (an event that sorts before it may still arrive)."""

    timestamp_ms: int
    rank: int
    seq: int
    event: BundledEvent


class AppliedExec(NamedTuple):
    """An exec already applied, kept so that a late connection can still pair with it."""

    timestamp_ms: int
    seq: int
    event: ProcessEvent
    paired: bool


@dataclass(frozen=True, slots=True)
class RestoredHost:
    """A host's state read back from a snapshot, its events decoded (not yet checked against the rule)."""

    network_ms: int
    process_ms: int
    released: Position | None
    pending: tuple[PendingConnection, ...]
    held: tuple[HeldEvent, ...]
    recent_execs: tuple[AppliedExec, ...]
    last_seq: int  # the highest arrival number in the snapshot, entries left out included (0 if none)


def empty_snapshot() -> HostSnapshot:
    """The snapshot of a host the correlator knows nothing of (no stream seen): a carrier for ``sources`` and
    ``rules`` when only the operator's rules hold state for it."""
    return HostSnapshot(network_ms=_NEVER_MS, process_ms=_NEVER_MS, released=None, pending=(), held=(), recent_execs=())


_NEVER_MS = -(2**63)  # the correlator's "no event seen yet"


def _rules(data: Any) -> Mapping[str, Any] | None:
    if data is not None and not isinstance(data, dict):
        raise SnapshotError(f"rules: expected an object, got {type(data).__name__}")
    return data


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")  # lossless for any bytes, and cheap


def _bytes(text: str) -> bytes:
    return text.encode("latin-1")


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """A host's state as the changelog keeps it: stream progress, the last position applied in order, and
    each entry's ordering data with its event's bytes as received."""

    network_ms: int
    process_ms: int
    released: Position | None
    pending: tuple[tuple[int, int, bytes], ...]  # (timestamp_ms, seq, raw connection)
    held: tuple[tuple[int, int, int, bytes], ...]  # (timestamp_ms, rank, seq, raw event)
    recent_execs: tuple[tuple[int, int, bytes, bool], ...]  # (timestamp_ms, seq, raw exec, paired)
    replayed: frozenset[int] = frozenset()  # seqs of the events above that ``shellwatch replay`` produced
    # the newest input position applied to this state per input partition, as the caller names them:
    # (input, offset, record timestamp); opaque to the core, kept so a replayed input is not applied twice
    sources: tuple[tuple[str, int, int], ...] = ()
    # the operator's EQL rules' state of this host (:meth:`shellwatch.core.host_rules.HostRules.export_host`)
    rules: Mapping[str, Any] | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": _VERSION,
                "progress": [self.network_ms, self.process_ms],
                "released": list(self.released) if self.released is not None else None,
                "pending": [[ts, seq, _text(raw)] for ts, seq, raw in self.pending],
                "held": [[ts, rank, seq, _text(raw)] for ts, rank, seq, raw in self.held],
                "recent": [[ts, seq, _text(raw), paired] for ts, seq, raw, paired in self.recent_execs],
                "replayed": sorted(self.replayed),
                # written only when known, so a snapshot without them is byte for byte what it was before;
                # readers that predate them ignore the key
                **({"sources": [list(s) for s in self.sources]} if self.sources else {}),
                **({"rules": self.rules} if self.rules is not None else {}),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HostSnapshot:
        try:
            doc = orjson.loads(data)
            if doc.get("v") != _VERSION:
                raise SnapshotError(f"unsupported snapshot version {doc.get('v')!r}")
            network_ms, process_ms = (int(x) for x in doc["progress"])
            released = doc["released"]
            return cls(
                network_ms=network_ms,
                process_ms=process_ms,
                released=Position(int(released[0]), int(released[1]), int(released[2])) if released else None,
                pending=tuple((int(ts), int(seq), _bytes(raw)) for ts, seq, raw in doc["pending"]),
                held=tuple((int(ts), int(rank), int(seq), _bytes(raw)) for ts, rank, seq, raw in doc["held"]),
                recent_execs=tuple(
                    (int(ts), int(seq), _bytes(raw), bool(paired)) for ts, seq, raw, paired in doc["recent"]
                ),
                replayed=frozenset(int(seq) for seq in doc.get("replayed", ())),  # absent in older snapshots
                sources=tuple((str(name), int(offset), int(ts)) for name, offset, ts in doc.get("sources", ())),
                rules=_rules(doc.get("rules")),
            )
        except SnapshotError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"not a host snapshot: {exc}") from None


class _Entry(Protocol):
    """What a snapshot keeps of any entry (the correlator's own entry types have these fields)."""

    @property
    def timestamp_ms(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def event(self) -> BundledEvent: ...


class _HeldEntry(_Entry, Protocol):
    @property
    def rank(self) -> int: ...


class _AppliedEntry(_Entry, Protocol):
    @property
    def paired(self) -> bool: ...


def snapshot_of(
    *,
    network_ms: int,
    process_ms: int,
    released: Position | None,
    pending: Collection[_Entry],
    held: Collection[_HeldEntry],
    recent_execs: Collection[_AppliedEntry],
) -> HostSnapshot:
    """A host's state as a snapshot: each entry's event as received, and which of them were replayed."""
    return HostSnapshot(
        network_ms=network_ms,
        process_ms=process_ms,
        released=released,
        pending=tuple((p.timestamp_ms, p.seq, p.event.raw) for p in pending),
        held=tuple((h.timestamp_ms, h.rank, h.seq, h.event.raw) for h in held),
        recent_execs=tuple((a.timestamp_ms, a.seq, a.event.raw, a.paired) for a in recent_execs),
        replayed=frozenset(
            [p.seq for p in pending if p.event.replayed]
            + [h.seq for h in held if h.event.replayed]
            + [a.seq for a in recent_execs if a.event.replayed]
        ),
    )


def restore(snapshot: HostSnapshot, fields: FieldSet | None = None) -> RestoredHost:
    """The snapshot's events decoded again (flattened under ``fields``, default the typed events' own),
    ``replayed`` as recorded. An entry whose bytes no longer decode to an event of its kind (a connection when
    pending or held at the connection rank, else an exec) is left out."""
    read = fields or decode_fields(MODEL_FIELDS)
    replayed = snapshot.replayed
    pending = []
    for ts, seq, raw in snapshot.pending:
        connection = _decoded(raw, NetworkEvent, seq in replayed, read)
        if connection is not None:
            pending.append(PendingConnection(ts, seq, connection))
    held = []
    for ts, rank, seq, raw in snapshot.held:
        if rank == CONNECTION:
            event: BundledEvent | None = _decoded(raw, NetworkEvent, seq in replayed, read)
        else:
            event = _decoded(raw, ProcessEvent, seq in replayed, read)
        if event is not None:
            held.append(HeldEvent(ts, rank, seq, event))
    recent_execs = []
    for ts, seq, raw, paired in snapshot.recent_execs:
        execution = _decoded(raw, ProcessEvent, seq in replayed, read)
        if execution is not None:
            recent_execs.append(AppliedExec(ts, seq, execution, paired))
    seqs = [seq for _, seq, _ in snapshot.pending] + [seq for _, _, seq, _ in snapshot.held]
    seqs += [seq for _, seq, _, _ in snapshot.recent_execs]
    return RestoredHost(
        network_ms=snapshot.network_ms,
        process_ms=snapshot.process_ms,
        released=snapshot.released,
        pending=tuple(pending),
        held=tuple(held),
        recent_execs=tuple(recent_execs),
        last_seq=max(seqs, default=0),
    )


_E = TypeVar("_E", NetworkEvent, ProcessEvent)


def _decoded(raw: bytes, kind: type[_E], replayed: bool, fields: FieldSet) -> _E | None:
    decoded = decode_json_event(raw, fields=fields)
    if not isinstance(decoded, Decoded):
        return None
    for event in decoded.events:
        if isinstance(event, kind):
            return replace(event, replayed=True) if replayed else event
    return None
