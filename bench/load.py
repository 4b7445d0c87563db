"""Putting the workload on the input topics: all at once (with an NDJSON copy), or paced at a live rate."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Producer

from bench.progress import step
from bench.workload import Generator
from shellwatch.kafka.clock import wall_clock_ms

PRODUCER_CONFIG = {
    "partitioner": "murmur2_random",  # the Java client's partitioner: co-partitioned by host.id
    "linger.ms": 20,
    "acks": "all",
    "enable.idempotence": True,  # a retried batch keeps its place: a reordered partition would count as missed alerts
    "compression.type": "none",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
}


class _Producer:
    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONFIG})
        self.failures: list[str] = []

    def on_delivery(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self.failures.append(str(error))

    def send(self, topic: str, key: bytes, value: bytes, callback: Callable[[Any, Any], None] | None = None) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key=key, on_delivery=callback or self.on_delivery)
                return
            except BufferError:
                self.producer.poll(0.05)

    def finish(self) -> None:
        if self.producer.flush(300) != 0 or self.failures:
            raise RuntimeError(f"records undelivered: {self.failures[:3]}")


def produce_bulk(bootstrap: str, topics: dict[str, str], generator: Generator, ndjson: Path) -> dict[str, Any]:
    """Every record of the workload to its kind's topic (keyed by host.id), and to *ndjson* in the same order."""
    producer = _Producer(bootstrap)
    started = time.perf_counter()
    count = size = 0
    with ndjson.open("wb") as out:
        for record in generator.records():
            producer.send(topics[record.kind], record.key, record.value)
            out.write(record.value + b"\n")
            count += 1
            size += len(record.value)
            if count % 1000 == 0:
                producer.producer.poll(0)
        producer.finish()
    seconds = time.perf_counter() - started
    return {"events": count, "avg_bytes": round(size / count), "seconds": round(seconds, 2)}


BUILD_SAMPLE = 2_000  # records timed to estimate how long building the paced workload takes
BUILD_MARGIN = 1.5  # the schedule starts this many estimated build times (+ 1 s) after the estimate


def _build_estimate_ms(generator: Generator) -> int:
    """How long building every record of *generator*'s workload takes, from a sample built by a throwaway copy."""
    sample = Generator(generator.workload, event_prefix=generator.prefix)
    count = min(BUILD_SAMPLE, generator.workload.events)
    started = time.perf_counter()
    for index in range(count):
        sample.record(index)
    return int((time.perf_counter() - started) * 1000 * generator.workload.events / count)


def _build(generator: Generator, total: int) -> list[Any]:
    """Every record of the schedule, the collector paused: hundreds of thousands of live records would make each of
    its full passes longer, and building them creates no cycles for it to find."""
    gc.disable()
    try:
        return [generator.record(index) for index in range(total)]
    finally:
        gc.enable()


def produce_paced(
    bootstrap: str, topics: dict[str, str], generator: Generator, rate_per_s: int
) -> tuple[dict[int, int], dict[str, Any]]:
    """The workload at *rate_per_s*, each ``@timestamp`` the wall-clock time its record is due.

    The records are built before the schedule starts, then only sent: building one costs ~35 µs of Python,
    so a producer that built them as it went reached 12-14k/s beside the worker and the broker on 2 cores,
    and sent its backlog in bursts under one timestamp (an attack's exec could then fall more than 5 s after
    its connection, and its expected alert was not owed). The schedule's start is set from a timed sample,
    with margin, so it lies after the build; a record sent after its due time keeps its due ``@timestamp``
    (a late shipper), and how far behind the sending fell is reported.

    Returns the broker (create) timestamp of each attack's exec, by attack index, and the achieved rate.
    """
    if rate_per_s != generator.workload.rate_per_s:
        raise ValueError(f"rate {rate_per_s}/s differs from the workload's {generator.workload.rate_per_s}/s")
    producer = _Producer(bootstrap)
    exec_ms: dict[int, int] = {}

    def exec_delivered(attack: int) -> Callable[[Any, Any], None]:
        def done(error: KafkaError | None, message: Any) -> None:
            if error is not None:
                producer.failures.append(str(error))
            else:
                exec_ms[attack] = message.timestamp()[1]

        return done

    total = generator.workload.events
    estimate_ms = _build_estimate_ms(generator)
    for attempt in range(2):
        generator.start_ms = wall_clock_ms() + int(estimate_ms * BUILD_MARGIN) + 1000
        build_started = time.perf_counter()
        records = _build(generator, total)
        build_s = time.perf_counter() - build_started
        if wall_clock_ms() <= generator.start_ms:
            break
        # the sample misjudged it (the worker busy on the other core, say): once more, timed by this build
        step(f"building {total} records took {build_s:.1f}s, past the schedule's start (attempt {attempt + 1})")
        estimate_ms = int(build_s * 1000)
    else:
        raise RuntimeError(f"building {total} records took {build_s:.1f}s twice, past the schedule's start")
    start_ms = generator.start_ms
    time.sleep((start_ms - wall_clock_ms()) / 1000)
    started = time.monotonic()
    sent = 0
    behind_max = 0
    late_ms_max = 0
    while sent < total:
        due = min(total, int((time.monotonic() - started) * rate_per_s) + 1)
        behind_max = max(behind_max, due - sent)
        if sent >= due:
            time.sleep(0.002)
            continue
        late_ms_max = max(late_ms_max, wall_clock_ms() - records[sent].ts_ms)
        while sent < due:
            record = records[sent]
            callback = exec_delivered(record.attack) if record.attack is not None else None
            producer.send(topics[record.kind], record.key, record.value, callback)
            sent += 1
        producer.producer.poll(0)
    seconds = time.monotonic() - started
    producer.finish()
    return exec_ms, {
        "events": sent,
        "build_s": round(build_s, 1),
        "seconds": round(seconds, 2),
        "achieved_rate_per_s": round(sent / seconds),
        "max_backlog_events": behind_max,
        "max_send_late_ms": late_ms_max,
    }
