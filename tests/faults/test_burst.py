"""A minute of event time produced at once into a running worker loses and mis-pairs nothing (DESIGN §4).

The worker is up and caught up (its partitions idle, so every partner counts as caught up) when a minute of
Java hosts' events arrives in one burst, both topics at once but not in the same instant: a partition whose
burst lands first must not be forwarded whole while its partner still counts as caught up as of a fetch
answered before the partner's burst landed. The alerts topic is compared with offline detection.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.local.ports import free_port
from tests.faults.stream import outcome
from tests.faults.workload import java_hosts, require_exact
from tests.integration.deployment import Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SPAN_MS = 60_000


def test_a_minute_of_event_time_produced_at_once_into_a_running_worker(kafka_bootstrap: str, tmp_path: Path) -> None:
    deployment = Deployment(kafka_bootstrap, tmp_path)
    port = free_port()
    deployment.extra_env.update({"SHELLWATCH_WEB_ENABLED": "true", "SHELLWATCH_WEB_PORT": str(port)})
    try:
        deployment.start_worker()
        deployment.wait_ready(1)
        docs = java_hosts(hosts=24, span_ms=SPAN_MS, period_ms=4_000, start_ms=wall_clock_ms() - SPAN_MS, seed=41)
        deployment.produce(docs)
        out = outcome(deployment, f"burst of {SPAN_MS // 1000} s of event time, 1 worker", docs, timeout_s=90)
        print("\n" + "\n".join(out.examples))
        print(f"{out.result.line()}; {len(docs)} events; worker: {_counters(port)}")
        require_exact(out.result, deployment.log_digest)
    finally:
        deployment.stop()


def _counters(port: int) -> str:
    """The worker's late events and the merge's idle releases, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    names = ("shellwatch_late_events_total", "shellwatch_alignment_idle_releases_total")
    found = {name: re.search(rf"^{name} (\S+)$", text, re.MULTILINE) for name in names}
    return ", ".join(f"{name} {m.group(1) if m else '?'}" for name, m in found.items())
