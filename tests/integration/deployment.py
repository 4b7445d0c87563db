"""A worker deployment on the session's broker for integration tests: its own topics, app id and workers."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.kafka.admin import create_topic
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.kafka.documents import AlertReader, produce_documents
from shellwatch.local.process import WorkerProcess
from tests.integration.kafka_helpers import read_all

PARTITIONS = 3
LIVE = wall_clock_ms() - 60_000


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


class Deployment:
    """One worker deployment: its own topics and app id on the session's broker."""

    def __init__(
        self,
        bootstrap: str,
        workdir: Path,
        *,
        topic_config: Mapping[str, str] | None = None,
        other_inputs: Sequence[str] = (),
    ) -> None:
        """``other_inputs``: event categories besides network and process, each with a topic of its own."""
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.app_id = f"it-{uuid.uuid4().hex[:10]}"
        self.network, self.process = f"{self.app_id}-network", f"{self.app_id}-process"
        self.others = {category: f"{self.app_id}-{category}" for category in other_inputs}
        self.alerts = f"{self.app_id}-alerts"
        for topic in (self.network, self.process, *self.others.values()):
            create_topic(bootstrap, topic, PARTITIONS, config=topic_config)
        self.workers: list[WorkerProcess] = []
        self.extra_env: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SHELLWATCH_APP_ID": self.app_id,
            "SHELLWATCH_NETWORK_TOPIC": self.network,
            "SHELLWATCH_PROCESS_TOPIC": self.process,
            "SHELLWATCH_INPUT_TOPICS": ",".join(f"{c}={t}" for c, t in self.others.items()),
            "SHELLWATCH_ALERTS_TOPIC": self.alerts,
            "SHELLWATCH_DEAD_LETTER_TOPIC": f"{self.app_id}-dead-letters",
            "SHELLWATCH_WEB_ENABLED": "false",
            "SHELLWATCH_DATA_DIR": str(self.workdir / "data"),
            **self.extra_env,
        }

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.env(), self.workdir / f"worker-{len(self.workers)}.log").start()
        self.workers.append(worker)
        return worker

    def wait_ready(self, members: int = 1, timeout_s: float = 90.0) -> None:
        """Until both consumer groups (pre-filter and agent) are stable with ``members`` members."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        groups = [f"{self.app_id}-prefilter", self.app_id]

        def ready() -> bool:
            try:
                described: list[Any] = [f.result(timeout=10) for f in admin.describe_consumer_groups(groups).values()]
            except KafkaException:  # no coordinator yet
                return False
            return all(len(d.members) == members and str(d.state).endswith("STABLE") for d in described)

        wait_for(ready, timeout_s, f"{members} worker(s) to join both consumer groups")

    def backlog(self) -> int | None:
        """Records not yet committed by the worker's two consumer groups (pre-filter on the inputs, agent on the
        relevant topic), from the broker's committed offsets and end offsets; None if the broker did not answer."""
        total = 0
        for group, topics in (
            (f"{self.app_id}-prefilter", (self.network, self.process, *self.others.values())),
            (self.app_id, (f"{self.app_id}-relevant",)),
        ):
            consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False})
            try:
                partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
                for tp in consumer.committed(partitions, timeout=10):
                    low, high = consumer.get_watermark_offsets(tp, timeout=10)
                    total += high - (tp.offset if tp.offset >= 0 else low)
            except KafkaException:
                return None
            finally:
                consumer.close()
        return total

    def produce(self, docs: list[dict[str, Any]]) -> None:
        produce_documents(
            self.bootstrap, docs, network_topic=self.network, process_topic=self.process, other_topics=self.others
        )

    def source_disorder(self, limit: int = 5) -> list[str]:
        """Where the input topics hold a host's events out of ``@timestamp`` order within a partition (at most
        ``limit`` lines): disorder of the feed itself, which no worker can undo. A test that asserts an exact
        accounting checks its feed with this first, so a loss is never blamed on the worker wrongly, or missed."""
        found: list[str] = []
        for topic in (self.network, self.process, *self.others.values()):
            newest: dict[tuple[int, str], tuple[int, int]] = {}  # (partition, host) -> (@timestamp ms, offset)
            for record in read_all(self.bootstrap, topic, PARTITIONS):  # each partition's records in offset order
                doc = orjson.loads(record.value)
                key, stamp = (record.partition, str(doc["host"]["id"])), parse_timestamp_ms(doc["@timestamp"])
                before = newest.get(key)
                if before is not None and stamp < before[0]:
                    found.append(
                        f"{topic}[{record.partition}]@{record.offset}: host {key[1]} at {stamp} ms "
                        f"after its {before[0]} ms (offset {before[1]})"
                    )
                if before is None or stamp > before[0]:
                    newest[key] = (stamp, record.offset)
        return found[:limit]

    def alerts_for(self, expected: int, timeout_s: float = 60.0, settle_s: float = 4.0) -> list[dict[str, Any]]:
        reader = AlertReader(self.bootstrap, self.alerts)
        try:
            return reader.read(until=expected, timeout_s=timeout_s, settle_s=settle_s)
        finally:
            reader.close()

    def log_digest(self, kinds: int = 8) -> str:
        """What the workers' logs say went wrong, for a failed test's report: per log, its warning and error lines
        counted by message (timestamps and numbers folded), the most frequent few, and its last stats line."""
        lines = []
        for worker in self.workers:
            try:
                text = worker.log_path.read_text(errors="replace")
            except OSError:
                continue
            counted: Counter[str] = Counter()
            stats = ""
            for line in text.splitlines():
                level = _LEVEL.search(line)
                if level is None:
                    continue
                message = line[level.end() :].strip()
                if message.startswith("stats "):
                    stats = message
                elif level.group(1) in ("WARNING", "ERROR", "CRITICAL"):
                    counted[f"{level.group(1)} {_NUMBER.sub('N', message)[:160]}"] += 1
            lines.append(f"{worker.log_path.name}: {sum(counted.values())} warnings and errors")
            lines += [f"  {n} x {kind}" for kind, n in counted.most_common(kinds)]
            lines.append(f"  last {stats[:1200]}" if stats else "  no stats line yet")
        return "\n".join(lines)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


_LEVEL = re.compile(r"\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] ")
_NUMBER = re.compile(r"\d+")
