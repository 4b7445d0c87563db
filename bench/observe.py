"""Watching the worker from outside: its alerts (with record timestamps), its RSS, its committed offsets, its
state and forced evictions (its /metrics)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True, slots=True)
class AlertSeen:
    alert_id: str
    rule_id: str
    record_ms: int  # the alerts topic record's timestamp (set by the worker's producer)
    arrival_s: float  # when this reader got it (time.time())


class AlertCollector(threading.Thread):
    """Reads the alerts topic from the beginning until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="alerts")
        self.alerts: list[AlertSeen] = []
        self.lock = threading.Lock()
        self._stop_event = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-alerts-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self._consumer.subscribe([topic])

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                message = self._consumer.poll(0.05)
                if message is None or message.error() is not None:
                    continue
                arrival = time.time()
                value = message.value() or b"{}"
                try:
                    alert = orjson.loads(value)
                except orjson.JSONDecodeError:
                    alert = json.loads(value)
                seen = AlertSeen(str(alert["event"]["id"]), str(alert["rule"]["id"]), message.timestamp()[1], arrival)
                with self.lock:
                    self.alerts.append(seen)
        finally:
            self._consumer.close()

    def snapshot(self) -> list[AlertSeen]:
        with self.lock:
            return list(self.alerts)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


class RssSampler(threading.Thread):
    """VmRSS of *pid* every second, each sample tagged with the phase it was taken in."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="rss")
        self.status = Path(f"/proc/{pid}/status")
        self.samples: list[tuple[float, int, str]] = []  # (time.time(), kB, phase)
        self.phase = "start-up"
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                for line in self.status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.samples.append((time.time(), int(line.split()[1]), self.phase))
            except OSError:
                return
            self._stop_event.wait(1.0)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time *pid* has used so far (all its threads), from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


class CommittedOffsets:
    """The sum of a group's committed offsets over some topics (0 where none is committed yet)."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        self._wanted = [TopicPartition(t, p) for t in topics for p in range(partitions)]

    def total(self) -> int:
        for _ in range(20):  # the group coordinator moves or loads while the worker starts: retry
            try:
                return sum(max(tp.offset, 0) for tp in self._consumer.committed(self._wanted, timeout=10))
            except KafkaException:
                time.sleep(0.5)
        return sum(max(tp.offset, 0) for tp in self._consumer.committed(self._wanted, timeout=10))

    def close(self) -> None:
        self._consumer.close()


def groups_stable(bootstrap: str, groups: list[str]) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        described: list[Any] = [f.result(timeout=10) for f in admin.describe_consumer_groups(groups).values()]
    except Exception:  # no coordinator yet
        return False
    return all(len(d.members) >= 1 and str(d.state).endswith("STABLE") for d in described)


_STATE_GAUGES = {
    "shellwatch_state_hosts": "hosts",
    "shellwatch_state_pending_connections": "pending_connections",
    "shellwatch_state_held_events": "held_events",
}


def worker_state(port: int) -> dict[str, Any] | None:
    """The worker's state (hosts, pending connections, held events) and the state its caps forced out
    (``shellwatch_state_evictions_total`` by kind, ``shellwatch_rule_evictions_total`` summed over rules), read from
    its /metrics; None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            body = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    state: dict[str, Any] = {"evictions": {}, "rule_evictions": 0}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name in _STATE_GAUGES:
                state[_STATE_GAUGES[sample.name]] = int(sample.value)
            elif sample.name == "shellwatch_state_evictions_total":
                state["evictions"][sample.labels["kind"]] = int(sample.value)
            elif sample.name == "shellwatch_rule_evictions_total":
                state["rule_evictions"] += int(sample.value)
    return state
