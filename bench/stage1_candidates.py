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
        seen = kept = first_count = 0
        first, cpu_first = 0.0, 0.0
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batch.values():
                kept += len(screen.accepted([record.value or b"" for record in records]))
                seen += len(records)
            if seen and not first:
                first, first_count, cpu_first = time.time(), seen, time.process_time()
        result = rates(seen, started, first, first_count, time.time())
        result["steady_events_per_cpu_s"] = round((seen - first_count) / max(time.process_time() - cpu_first, 1e-9))
        return {**result, "kept": kept}
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
        seen = kept = first_count = 0
        first, cpu_first = 0.0, 0.0
        while seen < expected and time.time() < deadline:
            messages = consumer.consume(num_messages=10_000, timeout=0.1)
            values = [m.value() or b"" for m in messages if m.error() is None]
            kept += len(screen.accepted(values))
            seen += len(values)
            if seen and not first:
                first, first_count, cpu_first = time.time(), seen, time.process_time()
        result = rates(seen, started, first, first_count, time.time())
        result["steady_events_per_cpu_s"] = round((seen - first_count) / max(time.process_time() - cpu_first, 1e-9))
        return {**result, "kept": kept}
    finally:
        consumer.close()
