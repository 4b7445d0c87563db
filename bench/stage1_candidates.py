"""Stage 1's floor with two clients: read every input record and run the pre-filter screen on its bytes, nothing else.

(a) stays the bare aiokafka ``getmany`` + orjson loop of :mod:`bench.baselines`, unchanged, so c/a compares across
runs. These two loops answer issue 16's question of the cheapest honest stage 1 without building it:

- ``aiokafka``: ``getmany`` (records built as Python objects by aiokafka) + the worker's pre-filter, batched;
- ``confluent-kafka``: ``consume(num_messages)`` (librdkafka's fetch, messages built in C) + the same pre-filter.

Each is a consumer group of its own from the earliest offset; the rate is from the first batch to the last record,
and the CPU is this process's (its librdkafka threads included) over the same span.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer

from bench.baselines import rates
from shellwatch.core.byte_screen import ByteScreen


class _Tally:
    """Records read and kept; the wall and CPU clocks from the first record on."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.seen = self.kept = self.first_count = 0
        self.first = self.cpu_first = 0.0

    def add(self, values: list[bytes], screen: ByteScreen) -> None:
        self.kept += len(screen.accepted(values))
        self.seen += len(values)
        if self.seen and not self.first:
            self.first, self.first_count, self.cpu_first = time.time(), self.seen, time.process_time()

    def result(self) -> dict[str, Any]:
        result = rates(self.seen, self.started, self.first, self.first_count, time.time())
        cpu_s = max(time.process_time() - self.cpu_first, 1e-9)
        return {**result, "steady_events_per_cpu_s": round((self.seen - self.first_count) / cpu_s), "kept": self.kept}


async def _aiokafka(bootstrap: str, topics: list[str], expected: int, screen: ByteScreen) -> dict[str, Any]:
    started = time.time()
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"bench-s1-aiokafka-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tally = _Tally(started)
        while tally.seen < expected:
            batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batch.values():
                tally.add([record.value or b"" for record in records], screen)
        return tally.result()
    finally:
        await consumer.stop()


def aiokafka_screen(bootstrap: str, topics: list[str], expected: int, screen: ByteScreen) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(_aiokafka(bootstrap, topics, expected, screen), 1800))


def confluent_screen(bootstrap: str, topics: list[str], expected: int, screen: ByteScreen) -> dict[str, Any]:
    started = time.time()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-s1-confluent-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 1_048_576,
        }
    )
    consumer.subscribe(topics)
    deadline = started + 1800
    try:
        tally = _Tally(started)
        while tally.seen < expected and time.time() < deadline:
            messages = consumer.consume(num_messages=10_000, timeout=0.1)
            tally.add([m.value() or b"" for m in messages if m.error() is None], screen)
        return tally.result()
    finally:
        consumer.close()
