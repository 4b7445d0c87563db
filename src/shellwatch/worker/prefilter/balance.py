"""Keeping the two input topics in step while the pre-filter stage catches up on a backlog. Pure.

The correlation core waits for a host's other stream only up to the allowed lateness. When the stage
drains a backlog, ``getmany`` may serve one topic's partition much faster than its co-numbered partner
(same hosts, other kind): execs then outrun their connections by more than the lateness and are applied
unpaired. So a partition whose last consumed record is more than ``max_lead_ms`` (record timestamps)
ahead of a co-numbered partition that still has records to read is paused until that one catches up.
A partition with nothing left to read never holds another back, so live traffic is never paused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

__all__ = ["CatchUpBalance", "Partition"]

Partition = tuple[str, int]  # (topic, partition)


class CatchUpBalance:
    def __init__(self, max_lead_ms: int) -> None:
        if max_lead_ms < 0:
            raise ValueError(f"max_lead_ms must not be negative, got {max_lead_ms}")
        self.max_lead_ms = max_lead_ms
        self._front: dict[Partition, int] = {}

    def consumed(self, partition: Partition, record_ms: int) -> None:
        """The timestamp of the last record consumed from ``partition`` (in consumption order)."""
        if record_ms >= 0:
            self._front[partition] = record_ms

    def known(self) -> list[Partition]:
        return list(self._front)

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self._front.pop(partition, None)

    def to_pause(self, assigned: Iterable[Partition], behind: Mapping[Partition, bool]) -> set[Partition]:
        """The assigned partitions to hold back now; ``behind``: which still have records to read."""
        by_number: defaultdict[int, list[Partition]] = defaultdict(list)
        for partition in assigned:
            by_number[partition[1]].append(partition)
        paused: set[Partition] = set()
        for group in by_number.values():
            for ahead in group:
                front = self._front.get(ahead)
                if front is None:
                    continue
                for other in group:
                    other_front = self._front.get(other)
                    if other == ahead or not behind.get(other, False) or other_front is None:
                        continue
                    if front - other_front > self.max_lead_ms:
                        paused.add(ahead)
                        break
        return paused
