"""Kafka plumbing shared by the prefilter-stage tests: topics, producing, reading back, running the stage.

Each test keeps its own record type (what it expects of every record); ``produce`` needs only ``Producible``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.formats.event_codec import Router, route_record
from shellwatch.kafka.admin import create_topic
from shellwatch.worker.prefilter.stage import PrefilterConfig, PrefilterStats, run_prefilter_stage

Header = tuple[str, bytes | None]
At = tuple[str, int, int]  # topic, partition, offset


class Producible(Protocol):
    """A record to produce (``partition`` None: the Java partitioner places it by key)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[Header]: ...
    @property
    def partition(self) -> int | None: ...


R = TypeVar("R", bound=Producible)


@dataclass(frozen=True, slots=True)
class Stored:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes  # a null value reads as b""
    headers: tuple[Header, ...]
    timestamp: int

    @property
    def at(self) -> At:
        return (self.topic, self.partition, self.offset)


@dataclass(frozen=True, slots=True)
class Sent(Generic[R]):
    out: R
    stored: Stored


def _stored(msg: Message) -> Stored:
    topic, partition, offset, key, value = msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()
    assert topic is not None and partition is not None and offset is not None
    assert key is None or isinstance(key, bytes)
    return Stored(
        topic,
        partition,
        offset,
        key,
        value if isinstance(value, bytes) else b"",
        tuple(msg.headers() or ()),
        msg.timestamp()[1],
    )


def headers_dict(headers: tuple[Header, ...]) -> dict[str, bytes | None]:
    return dict(headers)


def make_topics(
    bootstrap: str, base: str, *, config: Mapping[str, str] | None = None, **partitions: int
) -> dict[str, str]:
    """One topic per role, ``<base>-<role>``, with that many partitions (and topic ``config``, if any)."""
    names = {role: f"{base}-{role}" for role in partitions}
    for role, count in partitions.items():
        create_topic(bootstrap, names[role], count, config=config)
    return names


def produce(
    bootstrap: str, records: Sequence[R], *, config: Mapping[str, Any] | None = None, flush_timeout_s: float = 30
) -> list[Sent[R]]:
    """Produce in order with the Java-compatible partitioner; return where each record landed."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "enable.idempotence": True,  # a retried batch keeps its place in the partition
            **(config or {}),
        }
    )
    sent: list[Sent[R]] = []
    errors: list[str] = []

    def callback(out: R) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(f"{err} at {msg.topic()}/{msg.partition()}/{msg.offset()}")
            else:
                sent.append(Sent(out, _stored(msg)))

        return on_delivery

    for out in records:
        kwargs: dict[str, Any] = {"key": out.key, "headers": list(out.headers), "on_delivery": callback(out)}
        if out.partition is not None:
            kwargs["partition"] = out.partition
        while True:
            try:
                producer.produce(out.topic, out.value, **kwargs)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(flush_timeout_s) == 0
    assert not errors, errors[:3]
    assert len(sent) == len(records)
    return sent


def read_all(bootstrap: str, topic: str, partitions: int, *, timeout_s: float = 20) -> list[Stored]:
    """Every record the topic holds now, from the start of each partition."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got: list[Stored] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < sum(ends.values()):
            assert time.monotonic() < deadline, f"read {len(got)} of {sum(ends.values())} from {topic}"
            for msg in consumer.consume(1000, 0.5):
                assert msg.error() is None, msg.error()
                got.append(_stored(msg))
    finally:
        consumer.close()
    return got


def stage_config(bootstrap: str, names: dict[str, str], group: str) -> PrefilterConfig:
    """The prefilter stage from the ``network`` and ``process`` topics to ``relevant``, dead letters to ``dlq``."""
    return PrefilterConfig(
        bootstrap_servers=bootstrap,
        source_topics=((names["network"], ("network",)), (names["process"], ("process",))),
        relevant_topic=names["relevant"],
        dead_letter_topic=names["dlq"],
        group_id=group,
    )


async def run_stage_until(
    config: PrefilterConfig,
    prefilter: ByteScreen,
    done: Callable[[PrefilterStats], bool],
    *,
    settle_s: float = 0.8,
    timeout_s: float = 25,
    stop_timeout_s: float = 15,
    decode: Router = route_record,
) -> PrefilterStats:
    """Run the prefilter stage until ``done(stats)``, ``settle_s`` more, then stop it (it commits that batch first)."""
    stats = PrefilterStats()
    stop = asyncio.Event()
    task = asyncio.create_task(run_prefilter_stage(config, prefilter, stop, stats, decode))
    deadline = time.monotonic() + timeout_s
    try:
        while not done(stats):
            if task.done():
                task.result()
                pytest.fail(f"prefilter stage stopped early: {stats}")
            assert time.monotonic() < deadline, f"prefilter stage did not finish: {stats}"
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle_s)  # caught up: let every partition emit a progress marker
    finally:
        stop.set()
        await asyncio.wait_for(task, stop_timeout_s)
    return stats
