"""Merging the assigned source partitions by record time before anything is forwarded. Pure: no Kafka, no clock.

The correlator pairs a host's connections and execs, which arrive on different topics (or partitions).
If the stage forwarded each fetch as it came, a fetch of one topic (up to 1 MiB: tens of seconds of event
time on a quiet partition) would go out before the partner topic's records of the same period, and on
every catch-up one host's exec stream would run far ahead of its connection stream. So, as Kafka Streams
does for a task's partitions (KIP-353, KIP-695), every record the screen keeps waits in its partition's
FIFO buffer, and the buffered head with the lowest record timestamp is released only when every other
assigned partition either has a buffered head of its own, has been read past that timestamp, or is caught
up (nothing left to read: live traffic never waits). A partition with records still on the broker holds
the merge for as long as it takes to fetch them, whatever the fetch size, lag or rate.

Order within a partition is never changed (heads only are compared; ties go to the earlier fetched).
Records the screen drops are not buffered but still move their partition's time forward. A partition
whose buffer reaches ``max_buffered`` is to be paused by the caller until it drains, so memory is bounded
while the consumer fetches the partitions the merge waits for. Offsets to commit stop at the first
record still buffered, so nothing unreleased is ever committed.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Alignment", "Fetched", "Released"]

P = TypeVar("P", bound=Hashable)  # a partition's identity, e.g. (topic, partition)
R = TypeVar("R")  # what is forwarded for a record


class Fetched(NamedTuple, Generic[R]):
    offset: int
    timestamp_ms: int  # the Kafka record timestamp; negative (none) sorts first
    item: R | None  # None: the screen dropped it (it only moves the partition's time)


class Released(NamedTuple, Generic[P, R]):
    partition: P
    offset: int
    item: R
    waited_ms: int  # from the fetch that brought it to its release


@dataclass(slots=True)
class _Buffer(Generic[R]):
    held: deque[tuple[int, int, int, R]] = field(default_factory=deque)  # (timestamp, offset, fetched at, item)
    time_ms: int = -1  # the highest record timestamp fetched from this partition
    next_offset: int | None = None  # the offset after the last record fetched


class Alignment(Generic[P, R]):
    def __init__(self, max_buffered: int = 20_000) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be positive, got {max_buffered}")
        self.max_buffered = max_buffered
        self._buffers: dict[P, _Buffer[R]] = {}
        self.resets = 0  # partitions re-read from an earlier offset (a seek after a rebalance or a failed commit)

    def fetched(self, partition: P, records: Iterable[Fetched[R]], now_ms: int) -> None:
        """Records of ``partition`` in fetch order. A record at or before one already fetched means the consumer
        went back (its position was reset): what was buffered for it is dropped, to be released once, from the
        re-read copies."""
        buffer = self._buffers.setdefault(partition, _Buffer())
        for record in records:
            if buffer.next_offset is not None and record.offset < buffer.next_offset:
                buffer.held.clear()
                buffer.time_ms = -1
                self.resets += 1
            buffer.next_offset = record.offset + 1
            buffer.time_ms = max(buffer.time_ms, record.timestamp_ms)
            if record.item is not None:
                buffer.held.append((record.timestamp_ms, record.offset, now_ms, record.item))

    def release(self, lag: Mapping[P, int | None], now_ms: int) -> list[Released[P, R]]:
        """Everything that may go now, in merge order. ``lag``: per assigned partition, the records left to
        read on the broker (0: caught up; None: not known yet, which waits like a lag)."""
        for gone in [p for p in self._buffers if p not in lag]:
            del self._buffers[gone]
        heads = [(held[0][0], held[0][2], n, p) for n, (p, b) in enumerate(self._buffers.items()) if (held := b.held)]
        heapq.heapify(heads)
        out: list[Released[P, R]] = []
        order = len(heads)
        while heads:
            timestamp_ms, _, _, partition = heads[0]
            if not self._may_release(partition, timestamp_ms, lag):
                break
            heapq.heappop(heads)
            held = self._buffers[partition].held
            _, offset, fetched_ms, item = held.popleft()
            out.append(Released(partition, offset, item, max(0, now_ms - fetched_ms)))
            if held:
                order += 1
                heapq.heappush(heads, (held[0][0], held[0][2], order, partition))
        return out

    def _may_release(self, partition: P, timestamp_ms: int, lag: Mapping[P, int | None]) -> bool:
        return all(other == partition or self._read_past(other, timestamp_ms, lag) for other in lag)

    def _read_past(self, other: P, timestamp_ms: int, lag: Mapping[P, int | None]) -> bool:
        """``other`` holds nothing back at ``timestamp_ms``: caught up, or it has a buffered head (no earlier than
        the merge's lowest), or it was read past that time. Else its records up to then may be on the broker."""
        buffer = self._buffers.get(other)
        return lag.get(other) == 0 or (buffer is not None and (bool(buffer.held) or buffer.time_ms >= timestamp_ms))

    def waiting_on(self, lag: Mapping[P, int | None]) -> list[P]:
        """The partitions the oldest buffered record waits for (for logs and tests)."""
        heads = [(b.held[0][0], p) for p, b in self._buffers.items() if b.held]
        if not heads:
            return []
        timestamp_ms, partition = min(heads, key=lambda head: head[0])
        return [p for p in lag if p != partition and not self._read_past(p, timestamp_ms, lag)]

    def commit_offset(self, partition: P, position: int) -> int:
        """The offset to commit for ``partition``: its first record still buffered, else the consumer's position."""
        buffer = self._buffers.get(partition)
        if buffer is not None and buffer.held:
            return min(buffer.held[0][1], position)
        return position

    def drained(self, partition: P) -> bool:
        """Nothing of ``partition`` is waiting here (a progress marker may then vouch for it)."""
        buffer = self._buffers.get(partition)
        return buffer is None or not buffer.held

    def full(self) -> set[P]:
        """Partitions to pause: their buffers reached ``max_buffered``."""
        return {p for p, b in self._buffers.items() if len(b.held) >= self.max_buffered}

    def buffered(self) -> int:
        return sum(len(b.held) for b in self._buffers.values())
