"""A worker rides out a broker outage: it stays up, logs the outage a few times, says it is not ready, and then
raises every alert of the traffic before and after; SIGTERM during an outage still ends it promptly.

The tests share a broker of their own (the session's broker must not go away under the other tests), which they
stop and restart on the same ports and data directory (``LocalKafka.halt`` / ``restart``). The traffic is live: each
document is produced when the wall clock reaches its ``@timestamp``.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.kafka.documents import produce_documents
from shellwatch.local.kafka import LocalKafka
from shellwatch.local.ports import free_port
from shellwatch.local.process import WorkerProcess
from tests.faults.workload import account, java_hosts, require_exact
from tests.integration.deployment import Deployment, wait_for
from tests.shared import offline_alert_ids

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

OUTAGE_S = 60
TRAFFIC_MS = 8_000
MAX_OUTAGE_LOG_LINES = 300
SIGTERM_EXIT_S = 30


@pytest.fixture(scope="module")
def module_broker(kafka_libs: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(kafka_libs)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def own_broker(module_broker: LocalKafka) -> LocalKafka:
    """The module's broker, running (a test before may have left it halted)."""
    if not module_broker.is_running():
        module_broker.restart()
    return module_broker


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    """Status and body of /readyz; (0, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, {}


def live_traffic(deployment: Deployment, *, seed: int) -> list[dict[str, Any]]:
    """Java hosts over the next ``TRAFFIC_MS``, each document produced when its @timestamp comes (blocks until then)."""
    docs = java_hosts(hosts=6, span_ms=TRAFFIC_MS, period_ms=2_000, start_ms=wall_clock_ms() + 500, seed=seed)

    def paced() -> Iterator[dict[str, Any]]:
        for doc in docs:
            delay_s = (parse_timestamp_ms(doc["@timestamp"]) - wall_clock_ms()) / 1000
            if delay_s > 0:
                time.sleep(delay_s)
            yield doc

    produce_documents(deployment.bootstrap, paced(), network_topic=deployment.network, process_topic=deployment.process)
    return docs


def log_lines(worker: WorkerProcess) -> int:
    return len(worker.log_path.read_bytes().splitlines())


def cpu_seconds(worker: WorkerProcess) -> float:
    assert worker.process is not None
    fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def start_worker(own_broker: LocalKafka, tmp_path: Path, port: int) -> tuple[Deployment, WorkerProcess]:
    deployment = Deployment(own_broker.bootstrap_servers, tmp_path)
    deployment.extra_env.update({"SHELLWATCH_WEB_ENABLED": "true", "SHELLWATCH_WEB_PORT": str(port)})
    worker = deployment.start_worker()
    deployment.wait_ready()
    wait_for(lambda: readyz(port)[0] == 200, 60, "/readyz 200 after start")
    return deployment, worker


def test_a_minute_without_the_broker_costs_no_alert_and_few_log_lines(own_broker: LocalKafka, tmp_path: Path) -> None:
    port = free_port()
    deployment, worker = start_worker(own_broker, tmp_path, port)
    try:
        before = live_traffic(deployment, seed=31)
        time.sleep(1)

        lines_at_stop, cpu_at_stop = log_lines(worker), cpu_seconds(worker)
        stopped = time.monotonic()
        own_broker.halt()
        samples: list[tuple[float, int, dict[str, Any]]] = []
        while time.monotonic() - stopped < OUTAGE_S:
            assert worker.running(), f"the worker exited during the outage:\n{worker.log_tail()}"
            status, body = readyz(port)
            samples.append((time.monotonic() - stopped, status, body))
            time.sleep(2)
        outage_lines, outage_cpu = log_lines(worker) - lines_at_stop, cpu_seconds(worker) - cpu_at_stop
        outage_s = time.monotonic() - stopped

        own_broker.restart()
        restarted = time.monotonic()
        restart_s = restarted - stopped - outage_s
        wait_for(lambda: readyz(port)[0] == 200, 90, "/readyz 200 after the broker came back")
        ready_after_s = time.monotonic() - restarted
        after = live_traffic(deployment, seed=32)

        expected = offline_alert_ids(before + after)
        alerts = deployment.alerts_for(len(expected), timeout_s=60, settle_s=3)
        result = account("broker outage", expected, alerts)
        not_ready = [t for t, status, _ in samples if status == 503]
        first = min(not_ready, default=-1)
        print(
            f"\n{result.line()}\noutage {outage_s:.0f} s: {outage_lines} log lines, {outage_cpu:.1f} s CPU, "
            f"/readyz 503 in {len(not_ready)} of {len(samples)} samples (first at {first:.0f} s); "
            f"broker restart {restart_s:.1f} s, ready {ready_after_s:.1f} s after"
        )
        assert worker.running(), worker.log_tail()
        require_exact(result, deployment.log_digest)
        assert outage_lines <= MAX_OUTAGE_LOG_LINES, worker.log_tail(80)
        assert all(status == 503 for t, status, _ in samples if t >= 5), samples
        assert all(body["checks"]["cluster_reachable"] is False for t, _, body in samples if t >= 5), samples
    finally:
        deployment.stop()


def test_sigterm_while_the_broker_is_away_ends_the_worker_promptly(own_broker: LocalKafka, tmp_path: Path) -> None:
    port = free_port()
    deployment, worker = start_worker(own_broker, tmp_path, port)
    try:
        deployment.produce(java_hosts(hosts=3, span_ms=3_000, period_ms=1_000, start_ms=wall_clock_ms(), seed=33))
        time.sleep(2)
        own_broker.halt()
        time.sleep(3)
        assert worker.running() and worker.process is not None
        signalled = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        wait_for(
            lambda: not worker.running(), SIGTERM_EXIT_S, f"the worker to exit within {SIGTERM_EXIT_S} s of SIGTERM"
        )
        print(f"\nexited {time.monotonic() - signalled:.1f} s after SIGTERM with status {worker.process.returncode}")
        assert worker.process.returncode == 0, worker.log_tail()
    finally:
        deployment.stop()
