"""Snapshots of one host's sequence state, for the worker's changelog-backed table.

A snapshot holds the events as received (raw bytes) plus the ordering data the correlator keeps;
restoring decodes the events again and re-checks them against the loaded rule, so a snapshot taken
under an older rule version cannot smuggle in an event the current rule rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

__all__ = ["HostSnapshot", "Position", "SnapshotError"]

_VERSION = 1


class Position(NamedTuple):
    """Where an event sorts among its host's events: ``@timestamp`` ms, then its rank (connections before
    execs), then its arrival number. Compares as the plain ``(timestamp_ms, rank, seq)`` tuple."""

    timestamp_ms: int
    rank: int
    seq: int


class SnapshotError(ValueError):
    """Bytes that are not a host snapshot of a supported version."""


def _text(raw: bytes) -> str:
    return raw.decode("latin-1")  # lossless for any bytes, and cheap


def _bytes(text: str) -> bytes:
    return text.encode("latin-1")


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    network_ms: int
    process_ms: int
    released: Position | None
    pending: tuple[tuple[int, int, bytes], ...]  # (timestamp_ms, seq, raw connection)
    held: tuple[tuple[int, int, int, bytes], ...]  # (timestamp_ms, rank, seq, raw event)
    recent_execs: tuple[tuple[int, int, bytes, bool], ...]  # (timestamp_ms, seq, raw exec, paired)
    replayed: frozenset[int] = frozenset()  # seqs of the events above that ``shellwatch replay`` produced

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
            )
        except SnapshotError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SnapshotError(f"not a host snapshot: {exc}") from None
