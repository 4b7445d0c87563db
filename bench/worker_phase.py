"""(c) the real ``shellwatch worker`` on the input topics: throughput to the last alert, then live latency.

One worker subprocess runs both phases, its RSS sampled every second throughout:

1. throughput: it starts on topics already holding the whole workload and runs until its pre-filter
   group has committed every input offset and every expected alert has arrived;
2. paced: the same worker, caught up, gets a live workload at a fixed rate; each sequence alert's
   latency is its alerts-topic record timestamp minus the produce timestamp of the exec that completed it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.load import produce_paced
from bench.observe import AlertCollector, AlertSeen, CommittedOffsets, RssSampler, cpu_seconds, worker_state
from bench.workload import SEQUENCE_RULE, SHELL_RULE, Generator
from shellwatch.core.pipeline import PipelineConfig
from shellwatch.kafka.admin import create_topic
from shellwatch.local.ports import free_port
from shellwatch.local.process import WorkerProcess

POLL_S = 0.25
SETTLE_S = 60.0

RAMP_P99_MS = 1000  # a ramp step holds while the sequence alerts' p99 latency stays within this


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _check(expected: dict[str, tuple[str, int]], alerts: list[AlertSeen]) -> dict[str, Any]:
    """Expected alerts against those seen. Alerts of the bundled rules beyond the expected ones are errors;
    alerts of other rules (the operator's, ``--rules``) are counted per rule id."""
    ids = {a.alert_id for a in alerts}
    by_rule: dict[str, int] = {}
    for rule, _attack in expected.values():
        by_rule[rule] = by_rule.get(rule, 0) + 1
    bundled = {SEQUENCE_RULE, SHELL_RULE}
    others = {a.alert_id: a.rule_id for a in alerts if a.alert_id not in expected}
    unexpected = sum(rule in bundled for rule in others.values())
    return {
        "expected": len(expected),
        "expected_by_rule": by_rule,
        "received_distinct": len(ids & set(expected)),
        "missing": len(set(expected) - ids),
        "unexpected": unexpected,
        "other_rules": dict(Counter(rule for rule in others.values() if rule not in bundled)),
        "duplicates": len(alerts) - len(ids),
        "ok": set(expected) <= ids and unexpected == 0,
    }


class WorkerBench:
    def __init__(
        self,
        bootstrap: str,
        topics: dict[str, str],
        partitions: int,
        workdir: Path,
        *,
        cpus: str | None = None,
        max_hosts: int | None = None,
    ) -> None:
        """``cpus``: pin the worker to these CPUs (``taskset -c``), for the CPU-starved run; ``max_hosts``: its
        state cap (``SHELLWATCH_MAX_HOSTS``; its default otherwise)."""
        self.cpus = cpus
        self.max_hosts = max_hosts if max_hosts is not None else PipelineConfig().max_hosts
        self.web_port = free_port()
        self.bootstrap = bootstrap
        self.topics = topics
        self.partitions = partitions
        self.app_id = f"bench-worker-{uuid.uuid4().hex[:8]}"
        self.alerts_topic = f"{self.app_id}-alerts"
        self.log = workdir / "worker.log"
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SHELLWATCH_APP_ID": self.app_id,
            "SHELLWATCH_NETWORK_TOPIC": topics["network"],
            "SHELLWATCH_PROCESS_TOPIC": topics["process"],
            "SHELLWATCH_ALERTS_TOPIC": self.alerts_topic,
            "SHELLWATCH_DEAD_LETTER_TOPIC": f"{self.app_id}-dead-letters",
            "SHELLWATCH_WEB_ENABLED": "true",  # its /metrics: the state it holds and what its caps forced out
            "SHELLWATCH_WEB_PORT": str(self.web_port),
            "SHELLWATCH_MAX_HOSTS": str(self.max_hosts),
            "SHELLWATCH_DATA_DIR": str(workdir / "worker-data"),
        }

    def run(
        self,
        bulk: Generator,
        paced: Generator | None,
        rate_per_s: int,
        ramp: Sequence[Generator] = (),
    ) -> dict[str, Any]:
        """Throughput on ``bulk``, then latency on ``paced`` at ``rate_per_s``, then ``ramp``: paced phases at rising
        rates (each generator's own), stopping after the first whose p99 exceeds 1 s or that misses an alert."""
        create_topic(self.bootstrap, self.alerts_topic, self.partitions)
        collector = AlertCollector(self.bootstrap, self.alerts_topic)
        collector.start()
        offsets = CommittedOffsets(
            self.bootstrap, f"{self.app_id}-prefilter", list(self.topics.values()), self.partitions
        )
        started = time.time()
        worker = WorkerProcess(self.env, self.log, loglevel="INFO", cpus=self.cpus).start()
        assert worker.process is not None
        sampler = RssSampler(worker.process.pid)
        sampler.start()
        try:
            result: dict[str, Any] = {
                "throughput": self._throughput(worker, bulk, offsets, collector, sampler, started)
            }
            result["state"] = {"max_hosts": self.max_hosts, "after_throughput": worker_state(self.web_port)}
            if paced is not None:
                sampler.phase = "paced"
                result["paced"] = self._paced(worker, paced, rate_per_s, collector)
            if ramp:
                sampler.phase = "ramp"
                result["ramp"] = self._ramp(worker, ramp, collector)
            sampler.phase = "end"
            time.sleep(1.5)
            result["state"]["at_end"] = worker_state(self.web_port)
        finally:
            sampler.stop()
            status = worker.stop()
            collector.stop()
            offsets.close()
        result["exit_status"] = status
        result["last_stats_log"] = _last_stats(self.log)
        result["rss"] = _rss_report(sampler.samples)
        return result

    def _throughput(  # noqa: PLR0917 - a private step of run()
        self,
        worker: WorkerProcess,
        bulk: Generator,
        offsets: CommittedOffsets,
        collector: AlertCollector,
        sampler: RssSampler,
        started: float,
    ) -> dict[str, Any]:
        events = bulk.workload.events
        expected = set(bulk.expected)
        deadline = started + max(900.0, events / 1000)
        first: tuple[float, int] | None = None
        consumed_at: float | None = None
        assert worker.process is not None
        pid = worker.process.pid
        cpu_first: float | None = None
        cpu_done: float | None = None
        while True:
            if not worker.running():
                raise RuntimeError(f"the worker exited early:\n{worker.log_tail()}")
            if time.time() > deadline:
                raise RuntimeError(f"the worker did not finish in time:\n{worker.log_tail()}")
            total = offsets.total()
            now = time.time()
            if first is None and total > 0:
                first = (now, total)
                cpu_first = cpu_seconds(pid)
                sampler.phase = "throughput"
            if consumed_at is None and total >= events:
                consumed_at = now
            alerts = collector.snapshot()
            arrived = [a for a in alerts if a.alert_id in expected]
            if {a.alert_id for a in arrived} < expected or consumed_at is None:
                cpu_done = cpu_seconds(pid)  # the last sample before everything was in
            if consumed_at is not None and {a.alert_id for a in arrived} >= expected:
                break
            # every event read by the pre-filter stage and no expected alert for SETTLE_S: no more are coming (the
            # agent may still be working through what was forwarded: with a rule whose screen passes many records
            # it runs far behind the pre-filter stage, and its alerts keep arriving)
            newest = max((a.arrival_s for a in arrived), default=0.0)
            if consumed_at is not None and now - max(consumed_at, newest) > SETTLE_S:
                break
            time.sleep(POLL_S)
        assert first is not None
        last_alert = max((a.arrival_s for a in arrived), default=consumed_at)
        finished = max(consumed_at, last_alert)
        if not {a.alert_id for a in arrived} >= expected:  # the rate is then to the last alert that came
            print(f"WARNING: {len(expected - {a.alert_id for a in arrived})} expected alerts missing", flush=True)
        return {
            "events": events,
            "startup_s": round(first[0] - started, 2),  # process start to its first committed offset
            "wall_s": round(finished - started, 2),
            "events_per_s": round(events / (finished - started)),
            "steady_events_per_s": round((events - first[1]) / (finished - first[0])),
            # CPU the worker used from its first commit to the last poll before it was done (less sensitive to other
            # load on the machine than the wall-clock rates)
            "steady_events_per_cpu_s": (
                round((events - first[1]) / (cpu_done - cpu_first))
                if cpu_first is not None and cpu_done is not None and cpu_done > cpu_first
                else None
            ),
            "alerts": _check(bulk.expected, [a for a in alerts if a.arrival_s <= finished + 1]),
        }

    def _ramp(self, worker: WorkerProcess, ramp: Sequence[Generator], collector: AlertCollector) -> dict[str, Any]:
        steps: list[dict[str, Any]] = []
        sustained = None
        for generator in ramp:
            rate = generator.workload.rate_per_s
            paced = self._paced(worker, generator, rate, collector)
            p99 = paced["sequence_alert_latency_ms"]["p99"]
            held = p99 is not None and p99 <= RAMP_P99_MS and paced["alerts"]["ok"]
            steps.append(
                {
                    "rate_per_s": rate,
                    "achieved_rate_per_s": paced["load"]["achieved_rate_per_s"],
                    "p99_ms": p99,
                    "alerts_ok": paced["alerts"]["ok"],
                    "held": held,
                }
            )
            print(f"ramp: {steps[-1]}", flush=True)
            if not held:
                break
            sustained = rate
        return {"cpus": self.cpus, "steps": steps, "sustained_rate_per_s": sustained, "p99_limit_ms": RAMP_P99_MS}

    def _paced(
        self, worker: WorkerProcess, paced: Generator, rate_per_s: int, collector: AlertCollector
    ) -> dict[str, Any]:
        before = len(collector.snapshot())
        exec_ms, load = produce_paced(self.bootstrap, self.topics, paced, rate_per_s)
        expected = set(paced.expected)
        deadline = time.time() + 60
        while time.time() < deadline and not {a.alert_id for a in collector.snapshot()} >= expected:
            if not worker.running():
                raise RuntimeError(f"the worker exited early:\n{worker.log_tail()}")
            time.sleep(POLL_S)
        alerts = collector.snapshot()[before:]
        latencies_ms = []
        for alert in alerts:
            rule_attack = paced.expected.get(alert.alert_id)
            if rule_attack is not None and rule_attack[0] == SEQUENCE_RULE and rule_attack[1] in exec_ms:
                latencies_ms.append(alert.record_ms - exec_ms[rule_attack[1]])
        return {
            "load": load,
            "alerts": _check(paced.expected, alerts),
            "sequence_alert_latency_ms": {
                "count": len(latencies_ms),
                "p50": percentile(latencies_ms, 0.50) if latencies_ms else None,
                "p99": percentile(latencies_ms, 0.99) if latencies_ms else None,
                "max": max(latencies_ms) if latencies_ms else None,
            },
        }


def _last_stats(log: Path) -> str | None:
    """The worker's last periodic stats line (counts per outcome, late events...)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if "stats forwarder=" in line]
    return lines[-1] if lines else None


def _rss_report(samples: list[tuple[float, int, str]]) -> dict[str, Any]:
    if not samples:
        return {}
    t0 = samples[0][0]
    mib = [(round(t - t0, 1), round(kb / 1024, 1), phase) for t, kb, phase in samples]
    work = [s for s in mib if s[2] != "start-up"] or mib
    report: dict[str, Any] = {
        "start_mib": work[0][1],
        "mid_mib": work[len(work) // 2][1],
        "end_mib": work[-1][1],
        "max_mib": max(s[1] for s in mib),
        "samples": mib,
    }
    paced = [s[1] for s in mib if s[2] == "paced"]
    if paced:
        report["paced_first_mib"] = paced[0]
        report["paced_max_mib"] = max(paced)
        report["paced_last_mib"] = paced[-1]
        report["paced_growth_pct"] = round(100 * (max(paced) - paced[0]) / paced[0], 1)
    return report
