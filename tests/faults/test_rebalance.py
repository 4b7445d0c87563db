"""Scaling out and in on a live feed loses and mis-pairs nothing: 1 -> 2 -> 3 -> 1 workers (DESIGN §4).

One worker runs on a live feed (the fault workload produced as its event time passes); a second and a third
join, each once the groups are stable, then two of the three stop gracefully at the same time (SIGTERM: they
commit and leave both groups). Every step moves partitions, and the sequence state with them, while records
keep coming. Three of Elastic's Java rules run beside the bundled ones (``SHELLWATCH_RULES``), so their state
moves too. The alerts topic is then compared with offline detection of every document produced.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shellwatch.kafka.clock import wall_clock_ms
from tests.faults.stream import PacedProducer, outcome
from tests.faults.workload import java_hosts, require_exact
from tests.integration.deployment import Deployment
from tests.shared import operator_rules

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

SEED = 31
HOSTS = 300  # about 125 events/s
FEED_S = 240  # generated; the feed is stopped TAIL_S after the last step


def test_scaling_1_2_3_1_workers_mid_stream_raises_every_alert(kafka_bootstrap: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    docs = java_hosts(hosts=HOSTS, span_ms=FEED_S * 1_000, period_ms=4_000, start_ms=wall_clock_ms(), seed=SEED)
    deployment = Deployment(kafka_bootstrap, tmp_path)
    rules = operator_rules(tmp_path / "rules")  # their per-host state moves with the partitions too
    deployment.extra_env["SHELLWATCH_RULES"] = str(tmp_path / "rules")
    feed = PacedProducer(deployment, docs)
    steps: list[str] = []

    def step(members: int, what: str) -> None:
        t0, at_s = time.monotonic(), feed.elapsed_s()
        deployment.wait_ready(members, timeout_s=180)
        steps.append(f"{what} at {at_s:.1f} s into the feed: {members} stable after {time.monotonic() - t0:.1f} s")

    try:
        deployment.start_worker()
        deployment.wait_ready(1)
        feed.start()
        for members in (2, 3):
            time.sleep(rng.uniform(5.0, 12.0))
            assert feed.producing(), "the feed ended before every step"
            deployment.start_worker()
            step(members, f"worker {members} started")
        time.sleep(rng.uniform(5.0, 12.0))
        assert feed.producing(), "the feed ended before every step"
        leaving = deployment.workers[:2]  # the two oldest: the newest keeps running
        t0 = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda w: w.stop(), leaving))
        steps.append(f"2 workers stopped (exit {statuses}) in {time.monotonic() - t0:.1f} s")
        step(1, "down to 1 worker")
        time.sleep(15.0)  # the last worker works alone while the feed still flows
        sent = feed.finish()
        run = f"1 -> 2 -> 3 -> 1 workers, {len(rules)} of Elastic's rules loaded"
        out = outcome(deployment, run, sent, rules=rules)
        for line in steps:
            print(line)
        print("\n".join(out.examples))
        print(f"{out.result.line()}; {len(sent)} events in {feed.elapsed_s():.0f} s")
        assert statuses == [0, 0], f"a graceful stop exited with {statuses}"
        require_exact(out.result, deployment.log_digest)
    finally:
        feed.stop()
        deployment.stop()
