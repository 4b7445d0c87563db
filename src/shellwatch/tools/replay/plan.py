"""What ``shellwatch replay`` produces for each input line: target kind, key, value, headers. Pure.

Input lines are either captures (``shellwatch record`` output, see :mod:`shellwatch.formats.capture`) or plain ECS
NDJSON documents. Each record is routed by its events' ``event.category`` (network events to the network
topic, process events to the process topic, events of another input an operator's rule reads to that input's
topic, the rest to the process topic), keyed by ``host.id`` (else its recorded key), and carries its
recorded headers (minus the worker's own ``shellwatch.*`` headers) plus
:data:`~shellwatch.kafka.headers.REPLAY_HEADER`, which the worker turns into ``detection.replayed: true``
on the alerts the record raises. The value is produced byte for byte as recorded: event time stays in the
documents.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from shellwatch.formats.capture import CapturedRecord, CaptureError, parse_capture_line
from shellwatch.formats.event_codec import Decoded, DecodeError
from shellwatch.kafka.headers import REPLAY_HEADER, WORKER_PREFIX

__all__ = ["LineError", "ReplayRecord", "Target", "in_recorded_order", "plan_records"]

Target = str  # the input a record goes to: network, process, or another event category a loaded rule reads
Decoder = Callable[[bytes], Decoded | DecodeError]


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    line: int
    target: Target
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    source_ms: int | None  # the recorded record timestamp, else the event time: the pacing clock
    event_ids: tuple[str, ...]
    decoded: bool  # False: undecodable or no event of an input (sent to the process topic as is)
    recorded_ms: int | None = None  # the capture's record timestamp (None for plain ECS lines)


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    reason: str


def _record_of(number: int, line: bytes) -> CapturedRecord | LineError:
    try:
        captured = parse_capture_line(line)
    except CaptureError as exc:
        return LineError(number, f"bad capture record: {exc}")
    if captured is None:  # a plain ECS document
        return CapturedRecord(topic="", partition=0, offset=number - 1, timestamp_ms=None, key=None, value=line)
    return captured


def plan_records(lines: Iterable[bytes], decode: Decoder, run_id: str) -> Iterator[ReplayRecord | LineError]:
    """One :class:`ReplayRecord` (or :class:`LineError`) per non-blank line, in input order."""
    marker = (REPLAY_HEADER, run_id.encode())
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line.rstrip(b"\r\n")
        if not line.strip():
            continue
        captured = _record_of(number, line)
        if isinstance(captured, LineError):
            yield captured
            continue
        value = captured.value
        decoded = decode(value) if value is not None else None
        events = decoded.events if isinstance(decoded, Decoded) else []
        host_id = next((e.host_id for e in events if e.host_id is not None), None)
        event_time = next((e.timestamp_ms for e in events if e.timestamp_ms is not None), None)
        headers = tuple(h for h in captured.headers if not h[0].startswith(WORKER_PREFIX) and h[0] != REPLAY_HEADER)
        yield ReplayRecord(
            line=number,
            # the input its first event belongs to, as the worker observes the record (network, process, then
            # the other inputs by name: the codec's order); a record of no input goes to process
            target=events[0].kind if events else "process",
            key=host_id.encode("utf-8", "replace") if host_id is not None else captured.key,
            value=value,
            headers=(*headers, marker),
            source_ms=captured.timestamp_ms if captured.timestamp_ms is not None else event_time,
            event_ids=tuple(e.event_id for e in events if e.event_id is not None),
            decoded=bool(events),
            recorded_ms=captured.timestamp_ms,
        )


def in_recorded_order(
    items: Iterable[ReplayRecord | LineError], window: int = 50_000
) -> Iterator[ReplayRecord | LineError]:
    """Capture records in the order they were written (record timestamp, then input order).

    ``shellwatch record`` writes what each fetch returned, partition by partition, so a capture of two
    topics lists a host's connection and its exec in either order; replaying that order could hand the
    worker the exec first. Up to ``window`` records are held to restore the written order; plain ECS
    lines (no record timestamp) keep their place and release everything held before them.
    """
    held: list[tuple[int, int, ReplayRecord]] = []
    for seq, item in enumerate(items):
        if isinstance(item, ReplayRecord) and item.recorded_ms is not None:
            heapq.heappush(held, (item.recorded_ms, seq, item))
            if len(held) > window:
                yield heapq.heappop(held)[2]
            continue
        if isinstance(item, ReplayRecord):
            while held:
                yield heapq.heappop(held)[2]
        yield item
    while held:
        yield heapq.heappop(held)[2]
