"""Smoke tests against a real Kafka broker: aiokafka and confluent-kafka round trips."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, KafkaError, Message, Producer

from shellwatch.kafka.admin import create_topic
from shellwatch.local.kafka import LocalKafka

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

PARTITIONS = 3
KEYS = [f"host-{i:02d}".encode() for i in range(24)]

Record = tuple[bytes, bytes, int]  # key, value, partition


def java_partition(key: bytes, partitions: int = PARTITIONS) -> int:
    """What the Java client's default partitioner does with a non-null key."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def records_for(tag: str, keys: Iterable[bytes] = KEYS, per_key: int = 2) -> list[tuple[bytes, bytes]]:
    return [(k, f"{tag}:{k.decode()}:{n}".encode()) for n in range(per_key) for k in keys]


# ----------------------------------------------------------------- confluent-kafka


def confluent_produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> list[Record]:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
    delivered: list[Record] = []
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
            return
        key, value, partition = msg.key(), msg.value(), msg.partition()
        assert isinstance(key, bytes) and isinstance(value, bytes) and partition is not None
        delivered.append((key, value, partition))

    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered"
    assert not errors, errors
    return delivered


def confluent_consume(bootstrap: str, topic: str, group: str, expected: int, timeout: float = 30) -> list[Record]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    got: list[Record] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            assert err is None, err
            key, value, partition = msg.key(), msg.value(), msg.partition()
            assert isinstance(key, bytes) and isinstance(value, bytes) and partition is not None
            got.append((key, value, partition))
    finally:
        consumer.close()
    return got


# ------------------------------------------------------------------------- aiokafka


async def aio_produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> list[Record]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # default partitioner = Java murmur2
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in records]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(k, v, meta.partition) for (k, v), meta in zip(records, metas, strict=True)]


async def aio_consume(bootstrap: str, topic: str, group: str, expected: int, timeout: float = 30) -> list[Record]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for msgs in batches.values():
                got.extend((m.key, m.value, m.partition) for m in msgs)
    finally:
        await consumer.stop()
    return got


# ---------------------------------------------------------------------------- tests


def assert_consistent(records: list[Record]) -> None:
    """Every key always lands on one partition, and it is the Java-compatible murmur2 one."""
    for key, _value, partition in records:
        assert partition == java_partition(key), (key, partition)


def test_confluent_roundtrip(kafka_bootstrap: str, topic_name: str, unique_group: str) -> None:
    create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    sent = confluent_produce(kafka_bootstrap, topic_name, records_for("ck"))
    assert len(sent) == 2 * len(KEYS)
    assert_consistent(sent)
    assert {p for _k, _v, p in sent} == set(range(PARTITIONS))  # keys are spread over all partitions

    got = confluent_consume(kafka_bootstrap, topic_name, unique_group, expected=len(sent))
    assert sorted(got) == sorted(sent)


def test_aiokafka_roundtrip(kafka_bootstrap: str, topic_name: str, unique_group: str) -> None:
    create_topic(kafka_bootstrap, topic_name, PARTITIONS, config={"retention.ms": "3600000"})
    sent = asyncio.run(aio_produce(kafka_bootstrap, topic_name, records_for("aio")))
    assert len(sent) == 2 * len(KEYS)
    assert_consistent(sent)

    got = asyncio.run(aio_consume(kafka_bootstrap, topic_name, unique_group, expected=len(sent)))
    assert sorted(got) == sorted(sent)
    # per-partition order is preserved: the two values of each key come back in send order
    for key in KEYS:
        assert [v for k, v, _p in got if k == key] == [v for k, v, _p in sent if k == key]


def test_partitioners_agree_across_clients(kafka_bootstrap: str, topic_name: str, unique_group: str) -> None:
    """aiokafka's default partitioner and confluent's murmur2_random place each key identically."""
    create_topic(kafka_bootstrap, topic_name, PARTITIONS)
    by_confluent = confluent_produce(kafka_bootstrap, topic_name, records_for("ck", per_key=1))
    by_aiokafka = asyncio.run(aio_produce(kafka_bootstrap, topic_name, records_for("aio", per_key=1)))
    ck_map = {k: p for k, _v, p in by_confluent}
    aio_map = {k: p for k, _v, p in by_aiokafka}
    assert ck_map == aio_map == {k: java_partition(k) for k in KEYS}

    # read everything back with the *other* client than the one that wrote half of it
    got = asyncio.run(aio_consume(kafka_bootstrap, topic_name, unique_group, expected=2 * len(KEYS)))
    assert sorted(got) == sorted(by_confluent + by_aiokafka)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_second_broker_starts_and_stops_without_leftovers(kafka_libs: Path) -> None:
    broker = LocalKafka(kafka_libs)
    try:
        bootstrap = broker.start()
        pid = broker.pid
        data_dir = broker.data_dir
        assert pid is not None and data_dir is not None
        assert os.getpgid(pid) == pid  # own process group / session
        assert os.getsid(pid) == pid
        assert bootstrap.startswith("127.0.0.1:")
        create_topic(bootstrap, "probe", 1)  # it is a working broker, not just an open port
    finally:
        broker.stop()
    assert _gone(pid)
    assert _group_gone(pid)
    assert not data_dir.exists()
    assert not broker.is_running()
    broker.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = broker.bootstrap_servers
