"""What the stage-1 forwarder did, counted per outcome (the worker exports these as metrics)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka.abc import ConsumerRebalanceListener

from shellwatch.worker.stage_stats import Rebalances

__all__ = ["AssignmentListener", "Partition", "PrefilterStats"]

Partition = tuple[str, int]  # (topic, partition); aiokafka's TopicPartition is such a tuple


@dataclass(slots=True)
class PrefilterStats:
    """Every consumed record is exactly one of: pre-filtered, forwarded, dead-lettered, other category, or
    still ``buffered`` in the record-time merge (kept, waiting for the other partitions; not committed).

    ``markers``, ``far_future`` and ``batches`` count alongside: progress markers produced, forwarded
    records whose ``@timestamp`` is far ahead of their broker timestamp, and ``getmany`` batches that held
    at least one record; ``aligned`` records left the merge after ``alignment_wait_ms`` in all, ``idle_releases``
    of them once a caught-up partner with nothing buffered had been waited for (see alignment). ``consumed``
    and ``prefiltered_by_topic`` split ``records`` and ``prefiltered`` per source topic.

    Live state, for metrics and health (times are ``time.monotonic()`` seconds): ``heartbeat_s`` (the
    loop's last turn, ``None`` before the first), ``lag`` (highwater minus position per assigned
    partition, as last sampled), the assignment (``assigned_since``; ``assignment_complete`` once the
    group handed this member its partitions, even none) and each partition's ``last_record_s``.
    """

    records: int = 0
    prefiltered: int = 0
    forwarded: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    markers: int = 0
    other_category: int = 0
    no_match: int = 0  # decoded to events no loaded rule can match (Routing.relevant False): dropped
    far_future: int = 0
    batches: int = 0
    aligned: int = 0
    alignment_wait_ms: int = 0
    idle_releases: int = 0
    buffered: int = 0
    consumed: Counter[str] = field(default_factory=Counter)
    prefiltered_by_topic: Counter[str] = field(default_factory=Counter)
    heartbeat_s: float | None = field(default=None, repr=False)
    lag: dict[Partition, int] = field(default_factory=dict, repr=False)
    assignment_complete: bool = field(default=False, repr=False)
    assigned_since: dict[Partition, float] = field(default_factory=dict, repr=False)
    last_record_s: dict[Partition, float] = field(default_factory=dict, repr=False)
    rebalances: Rebalances = field(default_factory=Rebalances, repr=False)

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead_letters.values())

    @property
    def accounted(self) -> int:
        """Records with a known outcome or waiting in the merge; equals ``records`` after every turn of the loop."""
        return (
            self.prefiltered + self.forwarded + self.dead_lettered + self.other_category + self.no_match + self.buffered
        )

    def assigned(self, partitions: Iterable[Partition], now_s: float) -> None:
        for tp in partitions:
            key = (tp[0], tp[1])
            self.assigned_since.setdefault(key, now_s)
        self.assignment_complete = True

    def revoked(self, partitions: Iterable[Partition]) -> None:
        for tp in partitions:
            key = (tp[0], tp[1])
            self.assigned_since.pop(key, None)
            self.last_record_s.pop(key, None)
            self.lag.pop(key, None)
        self.assignment_complete = False

    def silent_partitions(self, now_s: float, silent_s: float) -> int:
        """Assigned partitions that yielded no record for more than ``silent_s`` (since assignment)."""
        return sum(
            1
            for tp, since in self.assigned_since.items()
            if now_s - max(since, self.last_record_s.get(tp, since)) > silent_s
        )


class AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps :class:`PrefilterStats`' view of the pre-filter consumer's assignment."""

    def __init__(self, stats: PrefilterStats, clock: Callable[[], float]) -> None:
        self.stats = stats
        self.clock = clock

    def on_partitions_revoked(self, revoked: Iterable[Partition]) -> None:
        self.stats.rebalances.revoked(self.clock())
        self.stats.revoked(revoked)

    def on_partitions_assigned(self, assigned: Iterable[Partition]) -> None:
        now_s = self.clock()
        self.stats.assigned(assigned, now_s)
        self.stats.rebalances.assigned(now_s)
