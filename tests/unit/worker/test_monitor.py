"""WorkerMonitor on an unstarted Faust app: its rebalance signals and the stages' stats drive the verdicts."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP

from shellwatch.kafka.reconnect import ClusterReachability
from shellwatch.settings import HealthSettings
from shellwatch.worker.prefilter.stats import PrefilterStats
from shellwatch.worker.stage_stats import CorrelateStats
from shellwatch.worker.web import WorkerMonitor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_signals_and_stats_drive_readiness_and_liveness() -> None:
    app = faust.App("monitor-test", broker="kafka://127.0.0.1:1", env={}, env_prefix="SHELLWATCH_FAUST_")
    clock, forwarder, stage = Clock(), PrefilterStats(), CorrelateStats()
    monitor = WorkerMonitor(
        app,
        relevant_topic="sw-relevant",
        forwarder=forwarder,
        correlate=stage,
        settings=HealthSettings(stall_s=10),
        clock=clock,
    )
    starting = monitor.readiness()
    assert starting.status == 503 and starting.checks["live"]
    assert [name for name, ok in starting.checks.items() if not ok] == [
        "prefilter_running",
        "prefilter_assigned",
        "correlate_assigned",
        "recovery_complete",
    ]
    stage.positions[7] = 99  # a partition from before the rebalance

    async def rebalance() -> None:
        await app.on_partitions_revoked.send(set())
        await app.on_partitions_assigned.send({TP("sw-relevant", 0), TP("sw-sequence-state-changelog", 0)})
        await app.on_rebalance_complete.send()

    asyncio.run(rebalance())
    assert stage.positions == {}  # lost partitions are forgotten
    forwarder.heartbeat_s = clock.now
    forwarder.assigned([("net", 0)], clock.now)
    monitor.beat()
    assert monitor.readiness().status == 200
    assert monitor.correlate_lag() == {}  # the consumer is not running: no sample, no failure

    clock.now += 5
    stage.begin(clock.now)
    clock.now += 11
    monitor.beat()
    forwarder.heartbeat_s = clock.now
    stuck = monitor.liveness()
    assert stuck.status == 503 and stuck.problems == ("correlate stage has been handling one record for 11.0s",)
    clock.now += 11  # no heartbeat, no pre-filter loop turn either
    assert [name for name, ok in monitor.liveness().checks.items() if not ok] == [
        "event_loop",
        "prefilter",
        "correlate",
    ]
    stage.done(0, 41, marker=False, now_s=clock.now)
    monitor.beat()
    forwarder.heartbeat_s = clock.now
    assert monitor.liveness().status == 200 and stage.positions == {0: 42}

    monitor.prefilter_stopped = "KafkaConnectionError: broker gone"
    verdict = monitor.readiness()
    assert verdict.status == 503 and not verdict.checks["prefilter_running"] and not verdict.checks["live"]

    asyncio.run(app.on_partitions_revoked.send({TP("sw-relevant", 0)}))
    assert not monitor.correlate_assigned and not monitor.recovered


def test_silent_partitions_use_the_configured_threshold() -> None:
    app = faust.App("monitor-silent", broker="kafka://127.0.0.1:1", env={}, env_prefix="SHELLWATCH_FAUST_")
    clock, forwarder = Clock(), PrefilterStats()
    monitor = WorkerMonitor(
        app,
        relevant_topic="r",
        forwarder=forwarder,
        correlate=CorrelateStats(),
        settings=HealthSettings(silent_partition_s=30),
        clock=clock,
    )
    forwarder.assigned([("net", 0), ("net", 1)], clock.now)
    forwarder.last_record_s[("net", 1)] = clock.now + 20
    clock.now += 31
    assert monitor.silent_partitions() == 1


def test_an_outage_makes_the_worker_unready_but_not_dead() -> None:
    app = faust.App("monitor-outage", broker="kafka://127.0.0.1:1", env={}, env_prefix="SHELLWATCH_FAUST_")
    clock, forwarder, stage = Clock(), PrefilterStats(), CorrelateStats()
    cluster = ClusterReachability(clock=clock)
    monitor = WorkerMonitor(
        app,
        relevant_topic="sw-relevant",
        forwarder=forwarder,
        correlate=stage,
        settings=HealthSettings(stall_s=10),
        clock=clock,
        cluster=cluster,
    )

    async def rebalance() -> None:
        await app.on_partitions_assigned.send({TP("sw-relevant", 0)})
        await app.on_rebalance_complete.send()

    asyncio.run(rebalance())
    forwarder.heartbeat_s = clock.now
    forwarder.assigned([("net", 0)], clock.now)
    monitor.beat()
    assert monitor.readiness().status == 200

    cluster.failed()  # no broker answers; both stages wait (the agent on one alert's delivery)
    stage.begin(clock.now)
    for _ in range(30):
        clock.now += 1
        monitor.beat()
        verdict = monitor.readiness()
        assert verdict.status == 503 and not verdict.checks["cluster_reachable"] and verdict.checks["live"]
    assert verdict.problems == ("the Kafka cluster is unreachable: no broker has answered for 30s (retrying)",)
    assert monitor.liveness().status == 200  # 30 s without progress, all of it waiting for the cluster

    cluster.succeeded()
    clock.now += 5
    monitor.beat()
    assert monitor.readiness().checks["cluster_reachable"]
    clock.now += 6  # stall_s (10) after the outage, still stuck: that is a stall again
    monitor.beat()
    assert [name for name, ok in monitor.liveness().checks.items() if not ok] == ["prefilter", "correlate"]


def test_a_failed_prefilter_stage_is_unready_until_its_loop_turns_again() -> None:
    app = faust.App("monitor-restart", broker="kafka://127.0.0.1:1", env={}, env_prefix="SHELLWATCH_FAUST_")
    clock, forwarder = Clock(), PrefilterStats()
    monitor = WorkerMonitor(
        app, relevant_topic="r", forwarder=forwarder, correlate=CorrelateStats(), settings=HealthSettings(), clock=clock
    )
    forwarder.heartbeat_s = clock.now
    forwarder.assigned([("net", 0)], clock.now)
    assert monitor.prefilter_running()
    clock.now += 1
    monitor.prefilter_failed("KafkaTimeoutError: batch expired")
    assert not monitor.prefilter_running() and not forwarder.assignment_complete
    verdict = monitor.readiness()
    assert not verdict.checks["prefilter_running"] and not verdict.checks["prefilter_assigned"]
    assert "the pre-filter stage failed and is being started again (KafkaTimeoutError: batch expired)" in (
        verdict.problems
    )
    clock.now += 2
    forwarder.heartbeat_s = clock.now  # the new run's loop turned
    assert monitor.prefilter_running()
