"""/healthz and /readyz verdicts from sampled facts (ages in seconds; None = not happened yet)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shellwatch.worker.health import LivenessFacts, ReadinessFacts, liveness, readiness

STALL_S = 60.0
RUNNING = LivenessFacts(
    heartbeat_age_s=0.4,
    prefilter_beat_age_s=0.1,
    prefilter_stopped=None,
    correlate_in_flight_s=None,
    correlate_quiet_s=3.0,
    correlate_lag=0,
)
STARTING = LivenessFacts(None, None, None, None, None, 0)
READY = ReadinessFacts(prefilter_running=True, prefilter_assigned=True, correlate_assigned=True, recovery_complete=True)


def facts(**changes: object) -> LivenessFacts:
    values = {name: getattr(RUNNING, name) for name in LivenessFacts.__slots__}
    values.update(changes)
    return LivenessFacts(**values)


@pytest.mark.parametrize(
    ("live", "failing", "problem"),
    [
        (RUNNING, set(), None),
        (STARTING, set(), None),  # table recovery before the stages start is not a failure
        (facts(heartbeat_age_s=61.0), {"event_loop"}, "heartbeat is 61.0s old"),
        (facts(heartbeat_age_s=60.0), set(), None),
        (facts(prefilter_beat_age_s=75.5), {"prefilter"}, "has not turned for 75.5s"),
        (facts(prefilter_stopped="KafkaError: gone"), {"prefilter"}, "stopped: KafkaError: gone"),
        (facts(correlate_in_flight_s=90.0), {"correlate"}, "handling one record for 90.0s"),
        (facts(correlate_in_flight_s=5.0), set(), None),
        (facts(correlate_quiet_s=120.0, correlate_lag=7), {"correlate"}, "no progress for 120.0s with 7 records"),
        (facts(correlate_quiet_s=120.0, correlate_lag=0), set(), None),  # idle, nothing to do
        (facts(correlate_quiet_s=None, correlate_lag=7), set(), None),  # not started yet
        (
            facts(heartbeat_age_s=99.0, prefilter_stopped="x"),
            {"event_loop", "prefilter"},
            "pre-filter stage stopped",
        ),
    ],
)
def test_liveness(live: LivenessFacts, failing: set[str], problem: str | None) -> None:
    verdict = liveness(live, STALL_S)
    assert {name for name, ok in verdict.checks.items() if not ok} == failing
    assert set(verdict.checks) == {"event_loop", "prefilter", "correlate"}
    assert verdict.ok is (not failing)
    assert verdict.status == (200 if not failing else 503)
    assert len(verdict.problems) == len(failing)
    if problem is not None:
        assert any(problem in text for text in verdict.problems), verdict.problems
    body = verdict.body()
    assert body["status"] == ("ok" if not failing else "unavailable") and body["problems"] == list(verdict.problems)


@pytest.mark.parametrize(
    "missing", ["prefilter_running", "prefilter_assigned", "correlate_assigned", "recovery_complete"]
)
def test_readiness_names_what_is_missing(missing: str) -> None:
    changes: dict[str, Any] = {missing: False}
    verdict = readiness(replace(READY, **changes), liveness(RUNNING, STALL_S))
    assert verdict.status == 503
    assert [name for name, ok in verdict.checks.items() if not ok] == [missing]
    assert len(verdict.problems) == 1


def test_ready_when_everything_holds_and_not_when_not_live() -> None:
    assert readiness(READY, liveness(RUNNING, STALL_S)).body() == {
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
    stuck = readiness(READY, liveness(facts(correlate_in_flight_s=600.0), STALL_S))
    assert stuck.status == 503 and stuck.checks["live"] is False
    assert stuck.problems == ("correlate stage has been handling one record for 600.0s",)


def test_not_ready_while_no_broker_answers() -> None:
    verdict = readiness(replace(READY, cluster_unreachable_s=12.4), liveness(RUNNING, STALL_S))
    assert verdict.status == 503
    assert [name for name, ok in verdict.checks.items() if not ok] == ["cluster_reachable"]
    assert verdict.problems == ("the Kafka cluster is unreachable: no broker has answered for 12s (retrying)",)


def test_a_prefilter_stage_being_restarted_says_why() -> None:
    failed = replace(READY, prefilter_running=False, prefilter_failure="KafkaTimeoutError: batch expired")
    verdict = readiness(failed, liveness(RUNNING, STALL_S))
    assert verdict.status == 503 and [name for name, ok in verdict.checks.items() if not ok] == ["prefilter_running"]
    assert verdict.problems == (
        "the pre-filter stage failed and is being started again (KafkaTimeoutError: batch expired)",
    )


def test_a_worker_that_just_started_is_live_but_not_ready() -> None:
    not_yet = ReadinessFacts(False, False, False, False)
    verdict = readiness(not_yet, liveness(STARTING, STALL_S))
    assert verdict.status == 503 and verdict.checks["live"] is True
    assert len(verdict.problems) == 4
