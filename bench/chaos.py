"""The soak (``make chaos``): a long live feed through two workers while workers are SIGKILLed and the broker is
restarted, then the accounting of every alert against offline detection of the same events, and the failover time
of each fault. Not part of CI (about 15 minutes on 2 cores); run on demand.

The feed is the fault suite's workload (Java hosts whose connections and shells interleave, with the conn, conn,
exec trap) diluted with benign traffic the pre-filter drops (nginx connections, cron children), produced as its
event time passes. Faults are spread over the feed with random jitter: ``--kills`` SIGKILLs of a random worker
(restarted at once, as Kubernetes would) and ``--broker-restarts`` broker restarts, alternately a controlled
shutdown and a SIGKILL of the broker JVM, each down for ``--broker-down-s``. A worker that exits on its own is
restarted by the supervisor, which says so (a worker must ride out a broker restart: such a line is a finding).

Printed: expected / present / missing / extra / duplicates / mispaired, and per fault how long until every
partition's hosts got alerts again. Exit status 1 if anything is missing, extra or mis-paired.

    python -m bench.chaos --events 1000000 --kills 10 --broker-restarts 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.local.kafka import LocalKafka, fetch_jars, jars_dir
from shellwatch.samples.ecs_factory import connection, execution
from tests.faults.stream import PacedProducer, Supervisor, TimedAlert, alerts_flowing_after, read_alerts
from tests.faults.workload import Accounting, account, java_hosts, matched_events
from tests.integration.deployment import PARTITIONS, Deployment
from tests.shared import offline_alerts

RESULTS = Path(__file__).parent / "results"
PERIOD_MS = 4_000  # a Java connection every ~4 s per host; a shell after half of them


@dataclass(frozen=True)
class Fault:
    kind: str  # "kill", "broker-sigterm", "broker-sigkill"
    detail: str
    at_ms: int
    at_s: float  # into the feed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in all (default 1,000,000)")
    parser.add_argument("--feed-seconds", type=int, default=600, help="event time the feed spans (default 600)")
    parser.add_argument("--benign-per-java", type=int, default=2, help="benign events per Java event (default 2)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--broker-restarts", type=int, default=2)
    parser.add_argument("--broker-down-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bootstrap", help="use this broker (no broker restarts) instead of a local one")
    return parser


def _benign(java_docs: list[dict[str, Any]], per_java: int, seed: int) -> list[dict[str, Any]]:
    """``per_java`` benign events beside each Java event, within a second of it, on hosts of their own."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for n, doc in enumerate(java_docs):
        base = int(datetime.datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00")).timestamp() * 1000)
        for k in range(per_java):
            ts, host, eid = base + rng.randrange(1_000), f"benign-{rng.randrange(2_000):04d}", f"b{n}-{k}"
            if k % 2 == 0:
                out.append(
                    connection(
                        ts_ms=ts,
                        host_id=host,
                        pid=800,
                        dest_ip="198.51.100.9",
                        event_id=eid,
                        executable="/usr/sbin/nginx",
                        dest_port=443,
                    )
                )
            else:
                out.append(
                    execution(
                        ts_ms=ts,
                        host_id=host,
                        pid=9_000 + k,
                        parent_pid=700,
                        event_id=eid,
                        name="ls",
                        args=["/usr/bin/ls", "-la", "/var/log"],
                        parent_executable="/usr/sbin/cron",
                        parent_args=["/usr/sbin/cron", "-f"],
                    )
                )
    return out


def _feed(args: argparse.Namespace, start_ms: int) -> list[dict[str, Any]]:
    java_events = args.events // (1 + args.benign_per_java)
    sample = java_hosts(hosts=50, span_ms=args.feed_seconds * 1_000, period_ms=PERIOD_MS, start_ms=start_ms, seed=0)
    hosts = max(1, round(java_events / (len(sample) / 50)))  # the workload's own events per host, measured
    java = java_hosts(
        hosts=hosts, span_ms=args.feed_seconds * 1_000, period_ms=PERIOD_MS, start_ms=start_ms, seed=args.seed
    )
    docs = java + _benign(java, args.benign_per_java, args.seed)
    docs.sort(key=lambda d: d["@timestamp"])  # ISO-8601 UTC strings of one format sort by time
    return docs


def _schedule(args: argparse.Namespace, rng: random.Random) -> list[tuple[float, str]]:
    """(seconds into the feed, fault) spread over the feed's middle 80 %, jittered, at least 12 s apart."""
    faults = ["kill"] * args.kills + [
        ("broker-sigkill" if n % 2 else "broker-sigterm")
        for n in range(args.broker_restarts if not args.bootstrap else 0)
    ]
    rng.shuffle(faults)
    span = args.feed_seconds * 0.8
    step = span / max(1, len(faults))
    times = [args.feed_seconds * 0.1 + n * step + rng.uniform(0, step / 2) for n in range(len(faults))]
    return list(zip(times, faults, strict=True))


def _inject(kind: str, deployment: Deployment, broker: LocalKafka | None, down_s: float, rng: random.Random) -> str:
    if kind == "kill":
        victim = rng.choice([w for w in deployment.workers if w.running()])
        victim.kill()
        deployment.start_worker()  # restarted at once
        return victim.log_path.name
    assert broker is not None
    broker.halt(kill=kind == "broker-sigkill")
    time.sleep(down_s)
    broker.restart()
    return f"down {down_s:.0f} s"


def _offline_lead_ms(args: argparse.Namespace) -> int:
    """How far ahead of now the feed's event time starts: the offline detection of the feed (about 2 ms per event
    on 2 cores, a Java-dense feed building an alert for most Java events) plus the workers' start."""
    return int(args.events) * 2 + 60_000


class _Drain:
    """Whether the workers have read and committed everything (``Deployment.backlog``), printed every 10 s
    while they catch up, so a stalled worker shows as a backlog that stops shrinking."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.last_print_s = 0.0

    def check(self) -> bool:
        backlog = self.deployment.backlog()
        if time.monotonic() - self.last_print_s >= 10 or backlog == 0:
            print(f"[chaos] {wall_clock_ms()}: workers' backlog {backlog} records", flush=True)
            self.last_print_s = time.monotonic()
        return backlog == 0


def _report(result: Accounting, faults: list[Fault], timed: list[TimedAlert], supervisor: Supervisor) -> None:
    """Print each fault's failover and the accounting; keep them in ``bench/results/chaos-<time>.json``."""
    failovers: list[dict[str, Any]] = []
    ends: list[int | None] = [f.at_ms for f in faults[1:]] + ([None] if faults else [])
    for fault, end_ms in zip(faults, ends, strict=True):
        flowing = alerts_flowing_after(timed, fault.at_ms, end_ms)
        worst = max(flowing.values()) if len(flowing) == PARTITIONS else None
        failovers.append(
            {"fault": fault.kind, "detail": fault.detail, "at_s": round(fault.at_s, 1), "flowing_again_s": worst}
        )
        shown = "no alert on some partition before the next fault" if worst is None else f"{worst:.1f} s"
        print(
            f"[chaos] {fault.kind} ({fault.detail}) at {fault.at_s:.0f} s: "
            f"alerts flowing on every partition after {shown}"
        )
    for line in supervisor.restarts:
        print(line)
    print(result.line())
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"chaos-{stamp}.json"
    out.write_bytes(
        orjson.dumps(
            {
                "command": " ".join(["python -m bench.chaos", *sys.argv[1:]]),
                "accounting": result.__dict__,
                "failovers": failovers,
                "supervisor_restarts": supervisor.restarts,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    print(f"[chaos] results: {out}")


def run(bootstrap: str, broker: LocalKafka | None, args: argparse.Namespace, workdir: Path) -> int:
    rng = random.Random(args.seed)
    deployment = Deployment(bootstrap, workdir)
    supervisor = Supervisor(deployment)
    faults: list[Fault] = []
    feed: PacedProducer | None = None
    try:
        # event time starts a little after now: offline detection runs first (minutes for 1 M events) and must not
        # compete with the workers for CPU while they run
        docs = _feed(args, wall_clock_ms() + _offline_lead_ms(args))
        print(
            f"[chaos] {len(docs):,} events over {args.feed_seconds} s of event time; offline detection...", flush=True
        )
        offline_started = time.monotonic()
        offline = offline_alerts(docs)
        print(f"[chaos] {len(offline):,} alerts expected ({time.monotonic() - offline_started:.0f} s)", flush=True)
        deployment.start_worker()
        deployment.start_worker()
        deployment.wait_ready(2, timeout_s=180)
        feed = PacedProducer(deployment, docs).start()
        ready_s = 0.0  # a fault waits until the previous one is 10 s behind (a broker restart takes a while)
        for at_s, kind in _schedule(args, rng):
            while feed.elapsed_s() < max(at_s, ready_s) and feed.producing():
                supervisor.check()
                time.sleep(0.5)
            if not feed.producing():
                break
            at_ms = wall_clock_ms()
            detail = _inject(kind, deployment, broker, args.broker_down_s, rng)
            faults.append(Fault(kind, detail, at_ms, feed.elapsed_s()))
            ready_s = feed.elapsed_s() + 10
            print(f"[chaos] {kind} ({detail}) at {faults[-1].at_s:.0f} s into the feed", flush=True)
        while feed.producing():
            supervisor.check()
            time.sleep(0.5)
        sent = feed.finish(timeout_s=600)
        print(f"[chaos] {len(sent):,} events produced in {feed.elapsed_s():.0f} s", flush=True)
        if len(sent) != len(docs):
            raise RuntimeError(f"the feed sent {len(sent):,} of {len(docs):,} events")
        expected = {str(a["event"]["id"]) for a in offline}
        timed = read_alerts(
            deployment.bootstrap,
            deployment.alerts,
            expected,
            timeout_s=1_800,
            settle_s=10,
            tick=supervisor.check,
            drained=_Drain(deployment).check,
        )
        result = account(
            f"soak: {len(sent):,} events, {sum(f.kind == 'kill' for f in faults)} kills, "
            f"{sum(f.kind != 'kill' for f in faults)} broker restarts",
            expected,
            [t.alert for t in timed],
            {str(a["event"]["id"]): matched_events(a) for a in offline},
        )
    finally:
        if feed is not None:
            feed.stop()
        deployment.stop()
    _report(result, faults, timed, supervisor)
    return 0 if (result.missing, result.extra, result.mispaired or 0) == (0, 0, 0) else 1


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shellwatch-chaos-")))
        broker: LocalKafka | None = None
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = stack.enter_context(LocalKafka(fetch_jars(jars_dir())))
            bootstrap = broker.bootstrap_servers
        status = run(bootstrap, broker, args, workdir)
    sys.exit(status)


if __name__ == "__main__":
    main()
