"""What the correlate stage (the Faust agent) did, kept as data; :mod:`shellwatch.worker.metrics` exports it.

The pre-filter stage keeps :class:`~shellwatch.worker.prefilter.stats.PrefilterStats`, the core keeps
:class:`~shellwatch.core.correlate.CorrelatorStats`; this is the agent's share: records handled, dead letters
by reason, alerts delivered by rule/case/severity, the detection-latency histogram, and the live state
the health checks read (times are ``time.monotonic()`` seconds, passed in by the caller).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["LATENCY_BUCKETS_S", "AlertKey", "CorrelateStats", "LatencyHistogram", "Rebalances"]

# Live detection takes a few hundred ms (cross-topic skew and the forwarder's marker interval); the
# upper buckets catch a lagging or recovering worker.
LATENCY_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

AlertKey = tuple[str, str, str]  # (rule id, case or "", severity)


@dataclass(slots=True)
class Rebalances:
    """How long a consumer group's rebalances (the first join included) left this member without partitions:
    from the revocation that starts one to the assignment that ends it, in monotonic seconds. Either stage's
    share of a failover as this member sees it; the dead member's session timeout comes before it."""

    count: int = 0
    seconds_total: float = 0.0
    last_s: float | None = None
    started_s: float | None = field(default=None, repr=False)

    def revoked(self, now_s: float) -> None:
        if self.started_s is None:
            self.started_s = now_s

    def assigned(self, now_s: float) -> None:
        if self.started_s is None:
            return
        took_s = max(0.0, now_s - self.started_s)
        self.count += 1
        self.seconds_total += took_s
        self.last_s = took_s
        self.started_s = None


@dataclass(slots=True)
class LatencyHistogram:
    """A Prometheus-style histogram: per-bucket counts (not cumulative), the sum and the count."""

    bounds_s: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)
    sum_s: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds_s) != sorted(set(self.bounds_s)) or not self.bounds_s:
            raise ValueError(f"bucket bounds must be increasing and distinct, got {self.bounds_s}")
        if not self.counts:
            self.counts = [0] * (len(self.bounds_s) + 1)  # the last one is +Inf

    def observe(self, seconds: float) -> None:
        """One observation; a negative one (clock skew) counts as 0."""
        value = max(0.0, seconds)
        self.counts[bisect.bisect_left(self.bounds_s, value)] += 1
        self.sum_s += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as the exposition format wants."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds_s, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


@dataclass(slots=True)
class CorrelateStats:
    records: int = 0
    markers: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: Counter[AlertKey] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram, repr=False)
    latency_unanchored: int = 0  # alerts delivered without a known record timestamp
    positions: dict[int, int] = field(default_factory=dict, repr=False)  # partition -> next offset to handle
    in_flight_since_s: float | None = field(default=None, repr=False)  # a record is being handled since then
    last_done_s: float | None = field(default=None, repr=False)
    rebalances: Rebalances = field(default_factory=Rebalances)

    def begin(self, now_s: float) -> None:
        self.in_flight_since_s = now_s

    def done(self, partition: int, offset: int, *, marker: bool, now_s: float) -> None:
        self.records += 1
        self.markers += marker
        self.positions[partition] = offset + 1
        self.in_flight_since_s = None
        self.last_done_s = now_s

    def delivered(self, alert: Mapping[str, Any], latency_s: float | None) -> None:
        detection = alert.get("detection", {})
        key = (str(alert["rule"]["id"]), str(detection.get("case") or ""), str(detection.get("severity") or ""))
        self.alerts[key] += 1
        if latency_s is None:
            self.latency_unanchored += 1
        else:
            self.latency.observe(latency_s)

    def forget_partitions(self, keep: set[int]) -> None:
        for partition in [p for p in self.positions if p not in keep]:
            del self.positions[partition]
