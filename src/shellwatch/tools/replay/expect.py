"""``shellwatch replay --expect``: wait for the worker to process a replay, then diff its alerts.

The alerts topic is read from its end as it was before the replay started. The wait ends once the
worker has caught up with the replay — its pre-filter group has committed past every input record (end
offsets taken after the replay), and then its correlation group has committed past everything the
pre-filter stage had forwarded by then; alerts are delivered before those commits — plus a settle period
(so a scenario that expects no alert is checked for real, and held events released by progress markers
arrive); or when the timeout passes. An expected alert still missing then is missing. Alerts count when one of
their matched events was produced by this replay (by ``event.id``); others (live traffic, other replays)
are ignored and counted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from shellwatch.errors import AlertTopicMissingError
from shellwatch.formats.alert_codec import decode_alert
from shellwatch.kafka.clock import WallClockMs, wall_clock_ms
from shellwatch.tools.expectations import Expectation, Observed, ReplayDiff, compare, expectation_of_alert

__all__ = ["AlertTopicMissingError", "AlertWatch", "CatchUp", "WaitResult", "await_expectations"]


class AlertWatch:
    """Reads the alerts topic from its current end (so only alerts raised from now on are seen)."""

    def __init__(self, client_conf: Mapping[str, Any], topic: str, *, clock_ms: WallClockMs = wall_clock_ms) -> None:
        self._clock_ms = clock_ms
        self._consumer = Consumer(
            {
                **client_conf,
                "group.id": f"shellwatch-replay-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
            }
        )
        metadata = self._consumer.list_topics(topic, timeout=15)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            self._consumer.close()
            raise AlertTopicMissingError(f"alerts topic {topic} does not exist (is the worker running?)")
        partitions = [TopicPartition(topic, p) for p in info.partitions]
        ends = [self._consumer.get_watermark_offsets(tp, timeout=15)[1] for tp in partitions]
        self._consumer.assign(
            [TopicPartition(topic, tp.partition, end) for tp, end in zip(partitions, ends, strict=True)]
        )

    def poll(self, timeout_s: float) -> list[tuple[dict[str, Any], int]]:
        """Alerts that arrived, each with its arrival time (epoch ms, read here)."""
        out = []
        for message in self._consumer.consume(num_messages=500, timeout=timeout_s):
            value = message.value()
            if message.error() is not None or value is None:
                continue
            out.append((decode_alert(value), self._clock_ms()))
        return out

    def close(self) -> None:
        self._consumer.close()


class CatchUp:
    """Whether the worker's two consumer groups have processed everything replayed so far."""

    def __init__(
        self, client_conf: Mapping[str, Any], *, input_topics: Sequence[str], relevant_topic: str, app_id: str
    ) -> None:
        self._admin = AdminClient(dict(client_conf))
        self._probe = Consumer({**client_conf, "group.id": f"shellwatch-probe-{uuid.uuid4().hex}"})
        self._inputs = list(dict.fromkeys(input_topics))
        self._relevant = relevant_topic
        self._groups = (f"{app_id}-prefilter", app_id)
        self._input_ends: dict[tuple[str, int], int] | None = None
        self._relevant_ends: dict[tuple[str, int], int] | None = None
        self.stage = "not started"

    def mark_replayed(self) -> None:
        """Take the input topics' end offsets: the replay's last records."""
        self._input_ends = self._ends(self._inputs)

    def caught_up(self) -> bool:
        if self._input_ends is None:
            return False
        if self._relevant_ends is None:
            if not self._committed_past(self._groups[0], self._input_ends):
                self.stage = f"pre-filter group {self._groups[0]} behind"
                return False
            self._relevant_ends = self._ends([self._relevant])
        if not self._committed_past(self._groups[1], self._relevant_ends):
            self.stage = f"correlation group {self._groups[1]} behind"
            return False
        self.stage = "caught up"
        return True

    def _ends(self, topics: Sequence[str]) -> dict[tuple[str, int], int]:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            info = self._probe.list_topics(topic, timeout=15).topics[topic]
            for partition in info.partitions:
                ends[(topic, partition)] = self._probe.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=15
                )[1]
        return ends

    def _committed_past(self, group: str, ends: Mapping[tuple[str, int], int]) -> bool:
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in ends])]
        try:
            result = self._admin.list_consumer_group_offsets(request)[group].result(timeout=15)
        except KafkaException:
            return False
        committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or []}
        # an empty partition (end 0) needs no commit; otherwise the committed offset must reach the end
        return all(end <= 0 or committed.get(tp, OFFSET_END) >= end for tp, end in ends.items())

    def close(self) -> None:
        self._probe.close()


@dataclass(slots=True)
class WaitResult:
    diff: ReplayDiff
    latency_ms: dict[str, int | None] = field(default_factory=dict)
    ignored: int = 0
    timed_out: bool = False
    stage: str = ""


def await_expectations(
    watch: AlertWatch,
    catch_up: CatchUp,
    expected: Sequence[Expectation],
    produced_ms: Mapping[str, int],
    *,
    timeout_s: float,
    settle_s: float,
    clock_s: Callable[[], float] = time.monotonic,
) -> WaitResult:
    """Collect alerts until expected ones arrived and the worker caught up (+ settle), or timeout."""
    observed: list[Observed] = []
    latency: dict[str, int | None] = {}
    ignored = 0
    deadline = clock_s() + timeout_s
    settle_until: float | None = None
    while True:
        for alert, arrived_ms in watch.poll(0.25):
            expectation = expectation_of_alert(alert)
            if produced_ms and not expectation.event_ids & produced_ms.keys():
                ignored += 1
                continue
            alert_id = str((alert.get("event") or {}).get("id"))
            replayed = bool((alert.get("detection") or {}).get("replayed"))
            observed.append(Observed(expectation, alert_id, arrived_ms, replayed))
            times = [produced_ms[i] for i in expectation.event_ids if i in produced_ms]
            latency.setdefault(alert_id, arrived_ms - max(times) if times else None)
        now = clock_s()
        if settle_until is not None and now >= settle_until:
            break
        if now >= deadline:
            diff = compare(expected, observed, require_replayed=True)
            return WaitResult(diff, latency, ignored, timed_out=True, stage=catch_up.stage)
        if settle_until is None and catch_up.caught_up():
            # every replayed record is processed: what is still missing will not come (held events are
            # released by the pre-filter stage's progress markers well within the settle period)
            settle_until = min(deadline, now + settle_s)
    return WaitResult(compare(expected, observed, require_replayed=True), latency, ignored, stage=catch_up.stage)
