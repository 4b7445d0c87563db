"""Stage-1 forwarder throughput on a real broker (run on demand, not a test).

Produces N realistic Elastic Defend-shaped ECS records (half network, half process; ~2% involve Java)
keyed by host.id with the Java partitioner, then runs ``run_prefilter_stage`` until every record is consumed
and prints records/s. Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set (or ``--bootstrap``), else starts a
throw-away local broker.

    .venv/bin/python bench/forwarder_throughput.py --records 200000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator

import orjson
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.kafka.admin import create_topic
from shellwatch.local.kafka import LocalKafka, fetch_jars, jars_dir
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.samples.ecs_factory import connection, execution
from shellwatch.worker.prefilter.stage import PrefilterConfig, PrefilterStats, run_prefilter_stage

START_MS = 1_732_406_400_000
NOISE_EXECUTABLES = ["/usr/sbin/nginx", "/usr/sbin/sshd", "/usr/bin/python3.11", "/usr/lib/postgresql/15/bin/postgres"]
NOISE_CHILDREN = ["ls", "cat", "grep", "awk", "sed", "curl", "logrotate"]


def documents(count: int, java_ratio: float, seed: int) -> Iterator[tuple[str, bytes, bytes]]:
    """(kind, host.id key, JSON bytes) for *count* records."""
    rng = random.Random(seed)
    hosts = [f"{rng.getrandbits(128):032x}" for _ in range(2000)]
    for i in range(count):
        host = rng.choice(hosts)
        ts = START_MS + i * 3
        java = rng.random() < java_ratio
        if i % 2 == 0:
            exe = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java" if java else rng.choice(NOISE_EXECUTABLES)
            ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            doc = connection(
                ts_ms=ts, host_id=host, pid=rng.randrange(300, 60000), dest_ip=ip, event_id=f"e{i}", executable=exe
            )
            yield "network", host.encode(), orjson.dumps(doc)
        else:
            child = "bash" if java else rng.choice(NOISE_CHILDREN)
            parent = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java" if java else rng.choice(NOISE_EXECUTABLES)
            doc = execution(
                ts_ms=ts,
                host_id=host,
                pid=rng.randrange(300, 60000),
                parent_pid=rng.randrange(2, 300),
                event_id=f"e{i}",
                name=child,
                args=[f"/usr/bin/{child}", "-c", "true"] if java else [f"/usr/bin/{child}", "/var/log/syslog"],
                parent_executable=parent,
            )
            yield "process", host.encode(), orjson.dumps(doc)


def produce(bootstrap: str, topics: dict[str, str], count: int, java_ratio: float) -> tuple[int, int]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 20,
            "compression.type": "none",
            "queue.buffering.max.messages": 500_000,
        }
    )
    size = 0
    for kind, key, value in documents(count, java_ratio, seed=42):
        size += len(value)
        while True:
            try:
                producer.produce(topics[kind], value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("not every benchmark record was delivered")
    return count, size


async def measure(config: PrefilterConfig, expected: int) -> tuple[PrefilterStats, float, float, int]:
    prefilter = Pipeline(load_reverse_shell_rule(), PipelineConfig()).prefilter
    stats = PrefilterStats()
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(run_prefilter_stage(config, prefilter, stop, stats))
    first_at, first_records = 0.0, 0
    try:
        while stats.records < expected:
            if task.done():
                task.result()
                raise RuntimeError("forwarder stopped early")
            if not first_at and stats.records:
                first_at, first_records = time.perf_counter(), stats.records
            await asyncio.sleep(0.005)
        finished = time.perf_counter()
    finally:
        stop.set()
        await task
    return stats, finished - started, finished - first_at, first_records


async def baseline(bootstrap: str, topics: list[str], expected: int, max_batch: int) -> float:
    """Records/s of a bare getmany loop that does nothing with the records: the ceiling on this machine."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"baseline-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen, first, first_at = 0, 0, 0.0
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=100, max_records=max_batch)
            seen += sum(len(records) for records in batch.values())
            if not first_at and seen:
                first, first_at = seen, time.perf_counter()
        return (seen - first) / (time.perf_counter() - first_at)
    finally:
        await consumer.stop()


def run(bootstrap: str, args: argparse.Namespace) -> None:
    base = f"bench-{uuid.uuid4().hex[:8]}"
    topics = {"network": f"{base}-network", "process": f"{base}-process", "relevant": f"{base}-relevant"}
    for name in topics.values():
        create_topic(bootstrap, name, args.partitions)
    create_topic(bootstrap, f"{base}-dlq", 1)
    t0 = time.perf_counter()
    count, size = produce(bootstrap, topics, args.records, args.java_ratio)
    print(f"produced {count} records ({size / count:.0f} B avg) in {time.perf_counter() - t0:.1f}s", flush=True)
    config = PrefilterConfig(
        bootstrap_servers=bootstrap,
        source_topics=((topics["network"], ("network",)), (topics["process"], ("process",))),
        relevant_topic=topics["relevant"],
        dead_letter_topic=f"{base}-dlq",
        group_id=f"{base}-group",
        max_batch=args.max_batch,
    )
    stats, total_s, steady_s, first = asyncio.run(measure(config, count))
    print(
        f"forwarded {stats.forwarded}, pre-filtered {stats.prefiltered}, dead letters {stats.dead_lettered}, "
        f"markers {stats.markers}, batches {stats.batches}"
    )
    print(f"wall clock incl. start-up and group join: {total_s:.2f}s = {count / total_s:,.0f} records/s")
    print(f"steady state (after the first batch of {first}): {(count - first) / steady_s:,.0f} records/s")
    ceiling = asyncio.run(baseline(bootstrap, [topics["network"], topics["process"]], count, args.max_batch))
    print(f"bare getmany loop on the same topics, no processing (the ceiling here): {ceiling:,.0f} records/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--java-ratio", type=float, default=0.02)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-batch", type=int, default=10_000)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip())
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # first-join coordinator chatter on a fresh broker
    with contextlib.ExitStack() as stack:
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = stack.enter_context(LocalKafka(fetch_jars(jars_dir())))
            bootstrap = broker.bootstrap_servers
            print(f"local broker at {bootstrap}", file=sys.stderr)
        run(bootstrap, args)


if __name__ == "__main__":
    main()
