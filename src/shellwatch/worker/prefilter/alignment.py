"""Merging the assigned source partitions by record time before anything is forwarded. Pure: no Kafka, no clock.

The correlator pairs a host's connections and execs, which arrive on different topics (or partitions).
If the stage forwarded each fetch as it came, a fetch of one topic (up to 1 MiB: tens of seconds of event
time on a quiet partition) would go out before the partner topic's records of the same period, and on
every catch-up one host's exec stream would run far ahead of its connection stream. So, as Kafka Streams
does for a task's partitions (KIP-353, KIP-695), every record the screen keeps waits in its partition's
FIFO buffer, and the buffered head with the lowest record timestamp is released only when every other
assigned partition either has a buffered head of its own, has been read past that timestamp, or is caught
up. A partition with records still on the broker holds the merge for as long as it takes to fetch them,
whatever the fetch size, lag or rate.

"Caught up" is an observation with a date: lag 0 as of the fetch that reported it. A producer that buffered
during a broker outage delivers its backlog to the two topics up to half a second apart, so a partner seen
caught up by a fetch answered *before* its backlog landed would let one topic's whole backlog (seconds of
record time) go ahead of the other's. As Kafka Streams' ``max.task.idle.ms`` (KIP-695) waits for an empty
partner, a caught-up partner with nothing buffered vouches for a head record only once a fetch answered at
least ``idle_ms`` after that record's own fetch still found it caught up: whatever the producer delivered
together with the head record, up to ``idle_ms`` apart, has been fetched by then. Live traffic on busy
partitions does not wait for it (partners are read past the head's time, or hold heads of their own); a head
whose quiet partner is waited out that way counts in ``idle_releases``. A partition's markers may vouch for
it only as far as it vouches here (:meth:`Alignment.vouches`).

Order within a partition is never changed (heads only are compared). Record timestamps have millisecond
resolution, and a backlog produced at once puts many records, seconds of event time, in one millisecond:
equal record timestamps are ordered by the events' own time (``event_ms``, the ``@timestamp`` the correlator
orders by), then by fetch. For the same reason a partner vouches by its time only once it was read *past* the
head's record timestamp: records of that same millisecond may still be on the broker.
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

__all__ = ["Alignment", "Fetched", "Released", "Span"]

_READ, _IDLE = "read", "idle"  # how a partner vouches for a head record (see Alignment._vouch)

P = TypeVar("P", bound=Hashable)  # a partition's identity, e.g. (topic, partition)
R = TypeVar("R")  # what is forwarded for a record


class Fetched(NamedTuple, Generic[R]):
    offset: int
    timestamp_ms: int  # the Kafka record timestamp; negative (none) sorts first
    item: R | None  # None: the screen dropped it (it only moves the partition's time)
    event_ms: int = -1  # the event's own time (``@timestamp``): breaks ties of equal record timestamps; -1 unknown


class Span(NamedTuple):
    """The offsets one fetch of a partition covered (in order), and their highest record timestamp."""

    first_offset: int
    last_offset: int
    max_timestamp_ms: int


class Released(NamedTuple, Generic[P, R]):
    partition: P
    offset: int
    item: R
    waited_ms: int  # from the fetch that brought it to its release
    idle: bool = False  # a caught-up empty partner was waited out (idle_ms) rather than read past its time


@dataclass(slots=True)
class _Buffer(Generic[R]):
    # (timestamp, event time, offset, fetched at (now_ms), fetch answered at (polled_ms), item)
    held: deque[tuple[int, int, int, int, int, R]] = field(default_factory=deque)
    time_ms: int = -1  # the highest record timestamp fetched from this partition
    next_offset: int | None = None  # the offset after the last record fetched


class Alignment(Generic[P, R]):
    def __init__(self, max_buffered: int = 20_000, idle_ms: int = 0) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be positive, got {max_buffered}")
        if idle_ms < 0:
            raise ValueError(f"idle_ms must not be negative, got {idle_ms}")
        self.max_buffered = max_buffered
        self.idle_ms = idle_ms
        self._buffers: dict[P, _Buffer[R]] = {}
        self.resets = 0  # partitions re-read from an earlier offset (a seek after a rebalance or a failed commit)
        self.idle_releases = 0  # records released only because a caught-up empty partner was waited out

    def fetched(self, partition: P, records: Iterable[Fetched[R]], now_ms: int, polled_ms: int | None = None) -> None:
        """Records of ``partition`` in fetch order. A record at or before one already fetched means the consumer
        went back (its position was reset): what was buffered for it is dropped, to be released once, from the
        re-read copies. ``polled_ms``: when the fetch that brought them was answered, on the clock of
        :meth:`release`'s ``polled_ms`` (default ``now_ms``)."""
        for record in records:
            kept = () if record.item is None else ((record.offset, record.timestamp_ms, record.event_ms, record.item),)
            span = Span(record.offset, record.offset, record.timestamp_ms)
            self.fetched_span(partition, span, kept, now_ms=now_ms, polled_ms=polled_ms)

    def fetched_span(
        self,
        partition: P,
        span: Span,
        kept: Iterable[tuple[int, int, int, R]],
        *,
        now_ms: int,
        polled_ms: int | None = None,
    ) -> None:
        """One fetch of ``partition`` at once, as :meth:`fetched` takes its records one by one: the ``span`` of
        offsets it covered and the (offset, timestamp, event time, item) of the records the screen kept, in order.
        Nothing is built per dropped record (about 98% of them)."""
        polled_ms = now_ms if polled_ms is None else polled_ms
        buffer = self._buffers.get(partition)
        if buffer is None:
            buffer = self._buffers[partition] = _Buffer()
        if buffer.next_offset is not None and span.first_offset < buffer.next_offset:
            buffer.held.clear()
            buffer.time_ms = -1
            self.resets += 1
        buffer.next_offset = span.last_offset + 1
        buffer.time_ms = max(buffer.time_ms, span.max_timestamp_ms)
        held = buffer.held
        for offset, timestamp_ms, event_ms, item in kept:
            held.append((timestamp_ms, event_ms, offset, now_ms, polled_ms, item))

    def release(
        self, lag: Mapping[P, int | None], now_ms: int, polled_ms: Mapping[P, int] | None = None
    ) -> list[Released[P, R]]:
        """Everything that may go now, in merge order. ``lag``: per assigned partition, the records left to
        read on the broker (0: caught up; None: not known yet, which waits like a lag). ``polled_ms``: per
        partition, when the fetch that reported its lag was answered (with ``idle_ms`` > 0, a caught-up
        partition without one vouches for nothing)."""
        polled = polled_ms or {}
        for gone in [p for p in self._buffers if p not in lag]:
            del self._buffers[gone]
        heads = [
            (held[0][0], held[0][1], held[0][3], n, p)
            for n, (p, b) in enumerate(self._buffers.items())
            if (held := b.held)
        ]
        heapq.heapify(heads)
        out: list[Released[P, R]] = []
        order = len(heads)
        while heads:
            partition = heads[0][4]
            held = self._buffers[partition].held
            vouched = [self._vouch(other, held[0], lag, polled) for other in lag if other != partition]
            if not all(vouched):
                break
            heapq.heappop(heads)
            _, _, offset, fetched_ms, _, item = held.popleft()
            idle = _IDLE in vouched
            self.idle_releases += idle
            out.append(Released(partition, offset, item, max(0, now_ms - fetched_ms), idle))
            if held:
                order += 1
                heapq.heappush(heads, (held[0][0], held[0][1], held[0][3], order, partition))
        return out

    def _vouch(
        self, other: P, head: tuple[int, int, int, int, int, R], lag: Mapping[P, int | None], polled: Mapping[P, int]
    ) -> str | None:
        """Why ``other`` holds nothing back at ``head``: it has a buffered head (no earlier than the merge's
        lowest), or it was read past that time, or it is caught up as of a fetch answered at least ``idle_ms``
        after ``head``'s (``_IDLE``). None: its records up to then may be on the broker, or about to land there."""
        buffer = self._buffers.get(other)
        if buffer is not None and (buffer.held or buffer.time_ms > head[0]):
            return _READ
        if lag.get(other) != 0:
            return None
        if self.idle_ms == 0:
            return _IDLE
        answered = polled.get(other)
        return _IDLE if answered is not None and answered >= head[4] + self.idle_ms else None

    def waiting_on(self, lag: Mapping[P, int | None], polled_ms: Mapping[P, int] | None = None) -> list[P]:
        """The partitions the oldest buffered record waits for (for logs and tests)."""
        heads = [(b.held[0], p) for p, b in self._buffers.items() if b.held]
        if not heads:
            return []
        head, partition = min(heads, key=lambda head: head[0][:2])
        return [p for p in lag if p != partition and not self._vouch(p, head, lag, polled_ms or {})]

    def vouches(self, partition: P, lag: Mapping[P, int | None], polled_ms: Mapping[P, int]) -> bool:
        """A progress marker may say ``partition`` holds nothing back: nothing of it waits here, it is caught up,
        and the merge would take that at its word for every record waiting here (else its backlog may still be
        landing, and a marker must not say what the merge does not yet believe)."""
        if not self.drained(partition) or lag.get(partition) != 0:
            return False
        return all(
            self._vouch(partition, b.held[0], lag, polled_ms)
            for p, b in self._buffers.items()
            if p != partition and b.held
        )

    def commit_offset(self, partition: P, position: int) -> int:
        """The offset to commit for ``partition``: its first record still buffered, else the consumer's position."""
        buffer = self._buffers.get(partition)
        if buffer is not None and buffer.held:
            return min(buffer.held[0][2], position)
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
