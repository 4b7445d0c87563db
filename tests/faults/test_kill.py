"""Workers SIGKILLed mid-stream lose and mis-pair nothing, and their share flows again soon (DESIGN §4).

Two workers run on a live feed (the fault workload produced as its event time passes). Five times, at a random
point of the stream, a random worker gets SIGKILL (no commit, no flush, no leaving the groups) and is restarted
at once, as a supervisor would. The survivor and the restarted worker take over its partitions once the group
session timeout (6 s) has expired. The alerts topic is then compared with offline detection of every document
produced: nothing missing, nothing extra, each alert quoting the events offline detection pairs (duplicates,
same id, are allowed).

Failover time, per kill: from the kill until every partition's hosts get alerts again (the first alert record
of each partition produced after the kill; the partitions the killed worker held stall until then), and until
both consumer groups are stable again with two members. The target is alerts flowing again within 15 s.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from shellwatch.kafka.clock import wall_clock_ms
from tests.faults.stream import PacedProducer, alerts_flowing_after, group_members, outcome, wait_replaced
from tests.faults.workload import java_hosts, require_exact
from tests.integration.deployment import PARTITIONS, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(540)]

SEED = 24
KILLS = 5
HOSTS = 360  # about 150 events/s at the workload's pace (a connection every ~4 s per host, a shell every ~8 s)
FEED_S = 300  # generated; the feed is stopped TAIL_S after the last failover
TAIL_S = 15.0
FAILOVER_TARGET_S = 15.0


@dataclass(frozen=True)
class Kill:
    worker: str
    at_s: float  # into the feed
    at_ms: int
    stable_s: float  # until both groups were stable with 2 members again


def test_workers_killed_mid_stream_raise_every_alert(kafka_bootstrap: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    docs = java_hosts(hosts=HOSTS, span_ms=FEED_S * 1_000, period_ms=4_000, start_ms=wall_clock_ms(), seed=SEED)
    deployment = Deployment(kafka_bootstrap, tmp_path)
    feed = PacedProducer(deployment, docs)
    kills: list[Kill] = []
    try:
        deployment.start_worker()
        deployment.start_worker()
        deployment.wait_ready(2)
        feed.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(2.0, 7.0))  # a random point of the stream, once the last failover is over
            assert feed.producing(), "the feed ended before every kill"
            victim = rng.choice([w for w in deployment.workers if w.running()])
            before = _members(deployment)
            victim.kill()
            at_ms, at_s, t0 = wall_clock_ms(), feed.elapsed_s(), time.monotonic()
            deployment.start_worker()  # restarted at once
            wait_replaced(deployment, before, 2, timeout_s=180)
            kills.append(Kill(victim.log_path.stem, at_s, at_ms, time.monotonic() - t0))
        time.sleep(TAIL_S)  # the last failover's catch-up runs while the feed still flows
        sent = feed.finish()
        out = outcome(deployment, f"{KILLS} SIGKILLs, 2 workers", sent)
        timed = out.timed
        ends = [k.at_ms for k in kills[1:]] + [None]
        for n, (kill, end_ms) in enumerate(zip(kills, ends, strict=True), 1):
            flowing = alerts_flowing_after(timed, kill.at_ms, end_ms)
            worst = max(flowing.values()) if len(flowing) == PARTITIONS else None
            per_partition = ", ".join(
                f"p{p} {flowing[p]:.1f} s" if p in flowing else f"p{p} none" for p in range(PARTITIONS)
            )
            verdict = "no alert on some partition before the next kill" if worst is None else f"{worst:.1f} s"
            target = (
                ""
                if worst is not None and worst <= FAILOVER_TARGET_S
                else f" (over the {FAILOVER_TARGET_S:.0f} s target)"
            )
            print(
                f"kill {n}: {kill.worker} at {kill.at_s:.1f} s into the feed; alerts flowing again on every "
                f"partition after {verdict}{target} ({per_partition}); both groups stable with 2 members after "
                f"{kill.stable_s:.1f} s"
            )
        print("\n".join(out.examples))
        print(f"{out.result.line()}; {len(sent)} events in {feed.elapsed_s():.0f} s")
        require_exact(out.result, deployment.log_digest)
    finally:
        feed.stop()
        deployment.stop()


def _members(deployment: Deployment) -> dict[str, frozenset[str]]:
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    for _ in range(100):
        members = group_members(deployment, admin)
        if members is not None:
            return members
        time.sleep(0.3)
    raise AssertionError("the groups are not stable")
