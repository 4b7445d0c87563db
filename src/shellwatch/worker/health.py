"""What ``/healthz`` and ``/readyz`` answer, from facts the wiring samples. Pure: ages are passed in.

``GET /healthz`` — liveness: "restart me if this fails". 200 while the worker's stages are running:

- the event loop turns: the worker's 1 s heartbeat timer fired within ``stall_s`` (the page being served
  at all shows the loop is not blocked; a stale heartbeat shows it is starved);
- the pre-filter stage runs: its consumer loop turned within ``stall_s`` and the stage has not stopped;
- the correlate stage runs: no record has been in its hands for more than ``stall_s``, and it has not
  gone ``stall_s`` without handling a record while its partitions have lag (time spent in table
  recovery or a rebalance does not count).

A stage that has not started yet (the first table recovery runs before the stages start) is not a
failure: a long recovery must not get the worker restarted. 503 lists each failing check.

``GET /readyz`` — readiness: "this member does its share of the work". 200 once all of these hold,
and while they do (a rebalance or a recovery makes it 503 until it completes):

- ``prefilter_running``: the input and worker topics were checked (they exist and are co-partitioned)
  and the pre-filter consumer loop is turning;
- ``prefilter_assigned``: the pre-filter consumer group has assigned this member its partitions;
- ``correlate_assigned``: the correlate group (Faust) has assigned this member its partitions;
- ``recovery_complete``: Faust's table recovery (the sequence state of the assigned partitions) finished;
- ``cluster_reachable``: the latest metadata request of the worker's Kafka clients got an answer (during a
  broker outage the worker keeps running and retries; it is not ready until a broker answers again);
- ``live``: the liveness checks pass.

Time a stage spends waiting for an unreachable cluster is not a stall (the wiring excuses it): restarting the
worker would not bring the broker back.

An assignment of zero partitions (more workers than partitions) counts as complete. 503 names the
checks that do not hold yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LivenessFacts", "ReadinessFacts", "Verdict", "liveness", "readiness"]


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checks: dict[str, bool]
    problems: tuple[str, ...]

    @property
    def status(self) -> int:
        return 200 if self.ok else 503

    def body(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "checks": self.checks,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class LivenessFacts:
    """Ages in seconds; ``None`` where the thing has not happened yet."""

    heartbeat_age_s: float | None
    prefilter_beat_age_s: float | None
    prefilter_stopped: str | None  # why the pre-filter stage ended, if it did
    correlate_in_flight_s: float | None  # how long the record in hand has been
    correlate_quiet_s: float | None  # since the correlate stage last made progress (or was excused)
    correlate_lag: int  # records behind on its assigned partitions


def liveness(facts: LivenessFacts, stall_s: float) -> Verdict:
    problems: list[str] = []
    checks: dict[str, bool] = {}

    def check(name: str, ok: bool, problem: str) -> None:
        checks[name] = ok
        if not ok:
            problems.append(problem)

    age = facts.heartbeat_age_s
    check("event_loop", age is None or age <= stall_s, f"event loop heartbeat is {age or 0:.1f}s old")
    if facts.prefilter_stopped is not None:
        check("prefilter", False, f"pre-filter stage stopped: {facts.prefilter_stopped}")
    else:
        beat = facts.prefilter_beat_age_s
        check("prefilter", beat is None or beat <= stall_s, f"pre-filter loop has not turned for {beat or 0:.1f}s")
    in_flight, quiet = facts.correlate_in_flight_s, facts.correlate_quiet_s
    if in_flight is not None and in_flight > stall_s:
        check("correlate", False, f"correlate stage has been handling one record for {in_flight:.1f}s")
    elif facts.correlate_lag > 0 and quiet is not None and quiet > stall_s:
        check(
            "correlate",
            False,
            f"correlate stage made no progress for {quiet:.1f}s with {facts.correlate_lag} records of lag",
        )
    else:
        checks["correlate"] = True
    return Verdict(not problems, checks, tuple(problems))


@dataclass(frozen=True, slots=True)
class ReadinessFacts:
    prefilter_running: bool
    prefilter_assigned: bool
    correlate_assigned: bool
    recovery_complete: bool
    cluster_unreachable_s: float | None = None  # how long no broker has answered; None while one does
    prefilter_failure: str | None = None  # why the pre-filter stage, being started again, failed


_WHY_NOT = {
    "prefilter_running": "the pre-filter stage has not started (topics not checked yet, or consumer starting)",
    "prefilter_assigned": "the pre-filter consumer group has not assigned this member its partitions",
    "correlate_assigned": "the correlate consumer group has not assigned this member its partitions",
    "recovery_complete": "table recovery has not finished",
}


def readiness(facts: ReadinessFacts, live: Verdict) -> Verdict:
    checks = {
        "prefilter_running": facts.prefilter_running,
        "prefilter_assigned": facts.prefilter_assigned,
        "correlate_assigned": facts.correlate_assigned,
        "recovery_complete": facts.recovery_complete,
    }
    why_not = dict(_WHY_NOT)
    if facts.prefilter_failure is not None:
        why_not["prefilter_running"] = (
            f"the pre-filter stage failed and is being started again ({facts.prefilter_failure})"
        )
    problems = [why_not[name] for name, ok in checks.items() if not ok]
    outage = facts.cluster_unreachable_s
    checks["cluster_reachable"] = outage is None
    if outage is not None:
        problems.append(f"the Kafka cluster is unreachable: no broker has answered for {outage:.0f}s (retrying)")
    checks["live"] = live.ok
    problems += live.problems
    return Verdict(not problems, checks, tuple(problems))
