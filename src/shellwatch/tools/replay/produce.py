"""``shellwatch replay FILE...``: produce captured or plain ECS events into the worker's input topics.

Records go out in file order (captures: in the order they were written, by record timestamp), as fast
as possible or (``speed``) keeping the recorded inter-arrival times divided by ``speed``. Each record's
Kafka timestamp is its produce time, so brokers' retention and timestamp checks accept captures of any
age; event time stays in the documents. Topics are never created: a missing topic stops the replay
before anything is sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from shellwatch.errors import ReplayError
from shellwatch.kafka.clock import WallClockMs, wall_clock_ms
from shellwatch.tools.progress import Progress
from shellwatch.tools.replay.plan import Decoder, LineError, ReplayRecord, Target, in_recorded_order, plan_records
from shellwatch.tools.terminal import printable

__all__ = ["ReplayError", "ReplaySummary", "ReplayTopics", "missing_topics", "replay_files"]


@dataclass(frozen=True, slots=True)
class ReplayTopics:
    network: str
    process: str  # the same name twice for a mixed topic
    others: Mapping[str, str] = field(default_factory=dict)  # input -> topic, for the other inputs the rules read

    def name(self, target: Target) -> str:
        if target == "network":
            return self.network
        return self.others.get(target, self.process)

    @property
    def names(self) -> list[str]:
        """Every topic, once."""
        return list(dict.fromkeys([self.network, self.process, *self.others.values()]))


@dataclass(slots=True)
class ReplaySummary:
    run_id: str
    produced: Counter[str] = field(default_factory=Counter)
    not_routed: int = 0  # records without an event of an input (sent to the process topic as is)
    bad_lines: list[str] = field(default_factory=list)
    produced_ms: dict[str, int] = field(default_factory=dict)  # event.id -> produce time (epoch ms)
    started_ms: int = 0
    duration_s: float = 0.0

    def lines(self) -> list[str]:
        total = sum(self.produced.values())
        rate = total / self.duration_s if self.duration_s > 0 else 0.0
        out = [f"replay {self.run_id}: {total} records produced in {self.duration_s:.2f} s ({rate:,.0f}/s)"]
        out += [f"  {topic}: {count}" for topic, count in sorted(self.produced.items())]
        if self.not_routed:
            out.append(f"  {self.not_routed} records had no event of an input (sent to the process topic)")
        if self.bad_lines:
            out.append(f"  {len(self.bad_lines)} lines skipped: " + "; ".join(self.bad_lines[:5]))
        return out


def missing_topics(client_conf: Mapping[str, Any], topics: Sequence[str]) -> list[str]:
    metadata = AdminClient(dict(client_conf)).list_topics(timeout=15)
    return [topic for topic in dict.fromkeys(topics) if topic not in metadata.topics]


def _lines(paths: Sequence[Path]) -> Iterator[bytes]:
    for path in paths:
        with path.open("rb") as handle:
            yield from handle


def _count_lines(paths: Sequence[Path]) -> int:
    return sum(1 for line in _lines(paths) if line.strip())


def replay_files(
    paths: Sequence[Path],
    *,
    client_conf: Mapping[str, Any],
    topics: ReplayTopics,
    decode: Decoder,
    run_id: str,
    err: IO[str],
    speed: float | None = None,
    clock_s: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    clock_ms: WallClockMs = wall_clock_ms,
) -> ReplaySummary:
    """Produce every line of ``paths``; returns once all records are acknowledged."""
    absent = missing_topics(client_conf, topics.names)
    if absent:
        raise ReplayError(f"topic(s) {', '.join(absent)} do not exist; replay never creates topics")
    summary = ReplaySummary(run_id=run_id, started_ms=clock_ms())
    producer = Producer(
        {**client_conf, "partitioner": "murmur2_random", "linger.ms": 5, "acks": "all", "enable.idempotence": True}
    )
    for name in topics.names:  # metadata first: a record must not wait for it while
        producer.list_topics(name, timeout=15)  # those after it (other topic) are already on their way
    failures: list[str] = []

    def delivered(error: KafkaError | None, message: Any, event_ids: tuple[str, ...]) -> None:
        if error is not None:
            failures.append(str(error))
            return
        _, produced_ms = message.timestamp()
        for event_id in event_ids:
            summary.produced_ms[event_id] = produced_ms
        summary.produced[message.topic()] += 1

    progress = Progress("replay", err, clock_s, total=_count_lines(paths))
    pacer = _Pacer(speed, clock_s, sleep)
    for item in in_recorded_order(plan_records(_lines(paths), decode, run_id)):
        progress.advance()
        if isinstance(item, LineError):
            summary.bad_lines.append(f"line {item.line}: {printable(item.reason)}")
            continue
        pacer.wait_for(item)
        summary.not_routed += not item.decoded
        _produce(producer, topics.name(item.target), item, delivered)
    remaining = producer.flush(60)
    progress.done()
    summary.duration_s = progress.elapsed_s
    if remaining or failures:
        raise ReplayError(f"{remaining} records undelivered; first failures: {failures[:3]}")
    return summary


def _produce(producer: Producer, topic: str, item: ReplayRecord, delivered: Callable[..., None]) -> None:
    ids = item.event_ids
    headers: Any = list(item.headers)  # null header values are kept (the client accepts None)

    def callback(error: KafkaError | None, message: Any) -> None:
        delivered(error, message, ids)

    while True:
        try:
            producer.produce(topic, value=item.value, key=item.key, headers=headers, on_delivery=callback)
            break
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.1)
    producer.poll(0)


class _Pacer:
    """Keeps the recorded gaps between records, divided by ``speed`` (``None``: no waiting)."""

    def __init__(self, speed: float | None, clock_s: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._speed = speed
        self._clock_s = clock_s
        self._sleep = sleep
        self._origin: tuple[float, int] | None = None

    def wait_for(self, item: ReplayRecord) -> None:
        if self._speed is None or item.source_ms is None:
            return
        if self._origin is None:
            self._origin = (self._clock_s(), item.source_ms)
            return
        started, first_ms = self._origin
        due = started + (item.source_ms - first_ms) / 1000 / self._speed
        delay = due - self._clock_s()
        if delay > 0:
            self._sleep(delay)
