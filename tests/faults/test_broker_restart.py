"""A broker restarted mid-stream should cost no alert and mis-pair none (DESIGN §4).

The module runs a broker of its own (never the session's: it goes down). One worker runs on a live feed (the
fault workload produced, by an idempotent producer, as its event time passes); twice mid-stream the broker is
stopped (SIGTERM, a controlled shutdown; or SIGKILL, a crash) and started again on the same ports and data once it
has been down ``DOWN_S`` (a pod restart is rarely quicker; with the start the outage is some 10 to 15 s). A
restart only: a minute-long outage is another test's.

The worker may exit when the broker goes away (it is not yet guaranteed to ride out an outage, see the README's
delivery guarantees): a supervisor restarts it, as Kubernetes would, and the test prints that it did. The alerts
topic is then compared with offline detection of every document produced; missing alerts are attributed to the
restart around which their exec was produced.

The feed's producer buffers while the broker is away and delivers that backlog to the network and process
partitions up to half a second apart: the pre-filter stage's merge must not take a partner seen caught up before
its backlog landed at its word (``SHELLWATCH_ALIGNMENT_IDLE_MS``), or one topic's whole backlog goes ahead of the
other's, beyond the correlator's allowed lateness.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.local.kafka import LocalKafka
from tests.faults.stream import PacedProducer, Supervisor, alerts_flowing_after, outcome
from tests.faults.workload import java_hosts, require_exact
from tests.integration.deployment import PARTITIONS, Deployment

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(360)]

HOSTS = 240  # about 100 events/s
FEED_S = 180  # generated; the feed stops TAIL_S after the last restart
RESTARTS = 2
BEFORE_S = 10.0  # the feed runs this long before the first restart, and between restarts
DOWN_S = 6.0
TAIL_S = 15.0
# a missing or mis-paired alert belongs to a restart when its exec was produced from this long before the stop
# until this long after the broker was back (the correlator holds an event up to the allowed lateness, 5 s)
WINDOW_MS = 6_000


@pytest.fixture(scope="module")
def own_broker(kafka_libs: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(kafka_libs, heap_opts=("-Xms128m", "-Xmx384m"))
    try:
        t0 = time.monotonic()
        broker.start()
        print(f"\n[localkafka] own broker {broker.bootstrap_servers} up in {time.monotonic() - t0:.1f}s")
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Restart:
    at_s: float  # into the feed
    down_ms: int
    up_ms: int
    stopped_s: float  # until the JVM had exited
    outage_s: float  # until it served again
    stable_s: float  # then until both groups were stable with the worker


@pytest.mark.parametrize("kill", [pytest.param(False, id="sigterm"), pytest.param(True, id="sigkill")])
def test_a_broker_restarted_mid_stream_costs_no_alert(own_broker: LocalKafka, tmp_path: Path, kill: bool) -> None:
    if not own_broker.is_running():  # an earlier variant failed while it was down
        own_broker.restart()
    bootstrap = own_broker.bootstrap_servers
    how = "SIGKILL" if kill else "SIGTERM"
    docs = java_hosts(hosts=HOSTS, span_ms=FEED_S * 1_000, period_ms=4_000, start_ms=wall_clock_ms(), seed=int(kill))
    deployment = Deployment(bootstrap, tmp_path)
    supervisor = Supervisor(deployment)
    feed = PacedProducer(deployment, docs)
    restarts: list[Restart] = []
    try:
        deployment.start_worker()
        deployment.wait_ready(1)
        feed.start()
        for _ in range(RESTARTS):
            _supervise(supervisor, BEFORE_S)
            assert feed.producing(), "the feed ended before every restart"
            at_s, down_ms, t0 = feed.elapsed_s(), wall_clock_ms(), time.monotonic()
            own_broker.halt(kill=kill)
            stopped_s = time.monotonic() - t0
            time.sleep(max(0.0, DOWN_S - stopped_s))
            own_broker.restart()
            up_ms, outage_s = wall_clock_ms(), time.monotonic() - t0
            t1 = time.monotonic()
            _ready_supervised(deployment, supervisor, timeout_s=120)
            restarts.append(Restart(at_s, down_ms, up_ms, stopped_s, outage_s, time.monotonic() - t1))
        _supervise(supervisor, TAIL_S)
        sent = feed.finish()
        out = outcome(deployment, f"broker {how} restarted {RESTARTS} times, 1 worker", sent, tick=supervisor.check)
        timed = out.timed
        missing_at = [feed.produced_ms(_exec_ms(a)) for a in out.missing()]
        mispaired_at = [feed.produced_ms(_exec_ms(a)) for a in out.mispaired()]
        ends = [r.down_ms for r in restarts[1:]] + [None]
        for n, (r, end_ms) in enumerate(zip(restarts, ends, strict=True), 1):
            flowing = alerts_flowing_after(timed, r.up_ms, end_ms)
            again = f"{max(flowing.values()):.1f} s" if len(flowing) == PARTITIONS else f"only on {sorted(flowing)}"
            near = [
                sum(1 for ms in at if r.down_ms - WINDOW_MS <= ms <= r.up_ms + WINDOW_MS)
                for at in (missing_at, mispaired_at)
            ]
            print(
                f"restart {n}: {how} at {r.at_s:.1f} s into the feed; stopped in {r.stopped_s:.1f} s, serving again "
                f"after {r.outage_s:.1f} s, groups stable {r.stable_s:.1f} s later; alerts flowing again on every "
                f"partition {again} after it was back; alerts whose exec was produced around it: missing {near[0]}, "
                f"mis-paired {near[1]}"
            )
        print(f"worker restarts by the supervisor: {len(supervisor.restarts)}")
        for note in supervisor.restarts:
            print(note)
        print("\n".join(out.examples))
        print(f"{out.result.line()}; {len(sent)} events in {feed.elapsed_s():.0f} s; {_worker_counts(deployment)}")
        require_exact(out.result, deployment.log_digest)
    finally:
        feed.stop()
        deployment.stop()


def _worker_counts(deployment: Deployment) -> str:
    """Late events at the correlator and the merge's idle releases, from each worker's last stats line."""
    counts = []
    for worker in deployment.workers:
        text = worker.log_path.read_text(errors="replace")
        found = [re.findall(rf"\b{name}=(\d+)", text) for name in ("late", "idle_releases")]
        counts.append(f"late={found[0][-1] if found[0] else '?'} idle_releases={found[1][-1] if found[1] else '?'}")
    return "worker stats: " + ", ".join(counts)


def _exec_ms(alert: dict[str, Any]) -> int:
    """The event time of the exec an alert names (the last event it quotes)."""
    events = orjson.loads(orjson.dumps(alert["detection"]["events"]))
    return parse_timestamp_ms(events[-1]["@timestamp"])


def _supervise(supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.check()
        time.sleep(0.5)


def _ready_supervised(deployment: Deployment, supervisor: Supervisor, timeout_s: float) -> None:
    """Until both groups are stable with the one worker, restarting it meanwhile if it exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        supervisor.check()
        try:
            deployment.wait_ready(1, timeout_s=5)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
