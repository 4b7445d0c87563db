"""The shellwatch benchmark: one command, one broker, all figures from the same run (run on demand, not a test).

    .venv/bin/python -m bench.run                      # 2,000,000 events, paced 20k/s for 60 s
    .venv/bin/python -m bench.run --events 200000 --paced-seconds 15   # a quick run

Starts a throw-away local broker (or uses KAFKA_BOOTSTRAP_SERVERS), produces the workload
(bench/workload.py) keyed by host.id with the Java partitioner, then on the same topics measures
(a) a bare aiokafka getmany + orjson loop, (b) a Faust agent that only iterates, (c) the shellwatch worker
to its last alert (alerts checked against the attacks), then the same worker's alert latency at a paced
live rate and its RSS throughout, and finally ``shellwatch detect`` against Elastic's eql engine on the
workload's NDJSON file. Results: bench/results/<stem>.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench import baselines, engines, report, rule_costs, stage1_candidates
from bench.load import produce_bulk
from bench.progress import step
from bench.worker_phase import WorkerBench
from bench.workload import SEQUENCE_RULE, Generator, Workload
from shellwatch.core.pipeline import Pipeline, PipelineConfig, worker_inputs
from shellwatch.kafka.admin import create_topic
from shellwatch.local.kafka import LocalKafka, fetch_jars, jars_dir
from shellwatch.rules.eql_rule import load_eql_rules
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule

RESULTS = Path(__file__).parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000, help="events in the workload (default 2,000,000)")
    parser.add_argument("--hosts", type=int, default=10_000, help="distinct host ids in the workload")
    parser.add_argument("--max-hosts", type=int, help="the worker's state cap, SHELLWATCH_MAX_HOSTS (default: its own)")
    parser.add_argument("--attacks", type=int, default=1_000, help="reverse-shell sequences (each: 2 alerts)")
    parser.add_argument("--java-connections", type=int, default=4_000, help="benign Java connections")
    parser.add_argument("--java-share", type=float, default=0.02, help="share of events involving Java")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=int, default=20_000, help="paced events/s for the latency phase")
    parser.add_argument("--paced-seconds", type=float, default=60.0, help="0 skips the paced phase")
    parser.add_argument("--paced-attacks", type=int, default=600)
    parser.add_argument(
        "--ramp-rates",
        default="",
        help="after the paced phase, paced phases at these rising rates (comma-separated events/s), stopping at the "
        "first whose p99 exceeds 1 s: the highest that held is the sustainable rate",
    )
    parser.add_argument("--ramp-seconds", type=float, default=20.0, help="length of each ramp step")
    parser.add_argument("--worker-cpus", help="pin the worker to these CPUs (taskset -c), e.g. 0: the CPU-starved run")
    parser.add_argument("--skip", action="append", default=[], choices=["bare", "faust", "eql", "rule-costs", "stage1"])
    parser.add_argument("--allowed-lateness-ms", type=int, help="the worker's SHELLWATCH_ALLOWED_LATENESS_MS")
    parser.add_argument(
        "--rules",
        type=Path,
        help="the worker's SHELLWATCH_RULES: Elastic's rule files (or a directory) run beside the bundled rules",
    )
    parser.add_argument(
        "--all-rules",
        action="store_true",
        help="the worker runs every vendored sequence rule bench/sequence_rules.txt lists (instead of --rules)",
    )
    parser.add_argument("--stem", default="latest", help="results file name stem (default: latest)")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip())
    return parser


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def _ratio(x: Any, y: Any) -> float | None:
    return round(x / y, 3) if x and y else None


def _stage1(bootstrap: str, sources: list[str], events: int) -> dict[str, Any]:
    step("stage-1 candidates: read + pre-filter screen, aiokafka getmany vs confluent-kafka consume")
    screen = Pipeline(load_reverse_shell_rule(), PipelineConfig(), load_shell_rule()).prefilter
    stage1 = {
        "aiokafka": stage1_candidates.aiokafka_screen(bootstrap, sources, events, screen),
        "confluent_kafka": stage1_candidates.confluent_screen(bootstrap, sources, events, screen),
    }
    step(f"stage 1 candidates: {stage1}")
    return stage1


def _paced_workload(args: argparse.Namespace, rate: int, seconds: float, *, seed: int) -> Workload:
    events = int(rate * seconds)
    return Workload(
        events=events,
        hosts=args.hosts,
        attacks=min(args.paced_attacks, events // 40),
        java_connections=min(args.java_connections, events // 100),
        java_share=args.java_share,
        rate_per_s=rate,
        seed=seed,
    )


def _worker_bench(bootstrap: str, args: argparse.Namespace, topics: dict[str, str], workdir: Path) -> WorkerBench:
    """The worker as configured: allowed lateness, and the operator's rules (``--rules``, or ``--all-rules``: the
    listed vendored sequence rules) with a topic of its own for each other input they read."""
    worker_bench = WorkerBench(
        bootstrap, topics, args.partitions, workdir, cpus=args.worker_cpus, max_hosts=args.max_hosts
    )
    if args.allowed_lateness_ms is not None:
        worker_bench.env["SHELLWATCH_ALLOWED_LATENESS_MS"] = str(args.allowed_lateness_ms)
    if args.all_rules:
        args.rules = workdir / "rules"
        args.rules.mkdir()
        for listed in rule_costs.listed_rules():
            shutil.copy(listed.file, args.rules / Path(listed.file).name)
    if args.rules is not None:
        worker_bench.env["SHELLWATCH_RULES"] = str(args.rules.absolute())
        # a rule's other inputs (a file where stage): their topics, empty (the workload has network and process)
        base = topics["network"].removesuffix("-network")
        others = {c: f"{base}-{c}" for c in worker_inputs(load_eql_rules([args.rules]).rules)[2:]}
        for name in others.values():
            create_topic(bootstrap, name, args.partitions)
        worker_bench.env["SHELLWATCH_INPUT_TOPICS"] = ",".join(f"{c}={t}" for c, t in others.items())
    return worker_bench


def run(bootstrap: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    workload = Workload(
        events=args.events,
        hosts=args.hosts,
        attacks=args.attacks,
        java_connections=args.java_connections,
        java_share=args.java_share,
        rate_per_s=args.rate,
    )
    base = f"bench-{uuid.uuid4().hex[:8]}"
    topics = {"network": f"{base}-network", "process": f"{base}-process"}
    for name in topics.values():
        create_topic(bootstrap, name, args.partitions)
    bulk = Generator(workload)
    ndjson = workdir / "events.ndjson"
    step(f"producing {workload.events:,} events to {', '.join(topics.values())}")
    produced = produce_bulk(bootstrap, topics, bulk, ndjson)
    step(f"produced: {produced}")
    sources = list(topics.values())
    skipped = {"events": workload.events, "wall_s": None, "events_per_s": None, "steady_events_per_s": None}
    if "bare" in args.skip:
        bare = skipped
    else:
        step("(a) bare getmany + orjson loop")
        bare = baselines.bare_loop(bootstrap, sources, workload.events)
        step(f"(a) {bare}")
    if "faust" in args.skip:
        faust = skipped
    else:
        step("(b) Faust pass-through agent")
        faust = baselines.faust_passthrough(bootstrap, sources, workload.events, workdir / "faust.log")
        step(f"(b) {faust}")
    stage1 = None if "stage1" in args.skip else _stage1(bootstrap, sources, workload.events)
    paced = None
    if args.paced_seconds > 0:
        paced_workload = _paced_workload(args, args.rate, args.paced_seconds, seed=11)
        paced = Generator(paced_workload, event_prefix="p")
    ramp = [
        Generator(_paced_workload(args, rate, args.ramp_seconds, seed=20 + step), event_prefix=f"r{rate}-")
        for step, rate in enumerate(int(r) for r in args.ramp_rates.split(",") if r.strip())
    ]
    step("(c) shellwatch worker: throughput, then paced latency" + (", then the ramp" if ramp else ""))
    worker_bench = _worker_bench(bootstrap, args, topics, workdir)
    worker = worker_bench.run(bulk, paced, args.rate, ramp)
    step(f"(c) {worker['throughput']}; paced: {worker.get('paced')}")
    costs = None
    if "rule-costs" not in args.skip:
        step("each vendored sequence rule's pre-filter pass rate and CPU, offline, on the NDJSON file")
        costs = rule_costs.rule_costs(ndjson, rule_costs.listed_rules())
        step(
            f"rule costs: pass rate bundled {costs['prefilter_pass_rate_bundled']}, "
            f"all rules {costs['prefilter_pass_rate_every_rule']}"
        )
    compared = None
    if "eql" not in args.skip:
        step("shellwatch detect vs eql on the NDJSON file")
        expected_sequence = {i for i, (rule, _) in bulk.expected.items() if rule == SEQUENCE_RULE}
        compared = engines.compare(ndjson, workload.events, expected_sequence)
        step(f"detect vs eql: {compared}")
    c = worker["throughput"]
    results: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "partitions": args.partitions,
        "rules": None if args.rules is None else str(args.rules),
        "workload": {k: getattr(workload, k) for k in ("events", "hosts", "attacks", "java_connections", "java_share")},
        "produce": produced,
        "bare": bare,
        "faust": faust,
        "worker": worker,
        "ratios": {
            "c/a": _ratio(c["steady_events_per_s"], bare["steady_events_per_s"]),
            "c/b": _ratio(c["steady_events_per_s"], faust["steady_events_per_s"]),
            "c/a incl. start-up": _ratio(c["events_per_s"], bare["events_per_s"]),
            "c/b incl. start-up": _ratio(c["events_per_s"], faust["events_per_s"]),
        },
        "detect_vs_eql": compared,
        "rule_costs": costs,
        "stage1_candidates": stage1,
    }
    results["targets"] = report.targets(results)
    return results


def main() -> None:
    args = _parser().parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # first-join coordinator chatter on a fresh broker
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shellwatch-bench-")))
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = stack.enter_context(LocalKafka(fetch_jars(jars_dir())))
            bootstrap = broker.bootstrap_servers
            step(f"local broker at {bootstrap}")
        results = run(bootstrap, args, workdir)
        json_path, md_path = report.write(results, RESULTS, args.stem)
    print(md_path.read_text())
    step(f"results: {json_path}, {md_path}")


if __name__ == "__main__":
    main()
