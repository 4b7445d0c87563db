"""The worker's HTTP pages on Faust's web server: ``/metrics``, ``/healthz``, ``/readyz``.

Faust's aiohttp server (``SHELLWATCH_WEB_PORT``, default 6066) starts before the consumers and table
recovery, so the probes answer during start-up. :class:`WorkerMonitor` samples the running app (Faust's
rebalance signals, its consumer's highwaters, the stages' stats) into the pure checks of
:mod:`shellwatch.worker.health` and the collector of :mod:`shellwatch.worker.metrics`. Faust's own pages that would
expose table contents (``/table``) or the cluster's members (``/router``) are switched off in
:mod:`shellwatch.worker.app`; ``/`` stays Faust's plain ``{"status": "OK"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from shellwatch.kafka.reconnect import CLUSTER, ClusterReachability
from shellwatch.settings import HealthSettings, KafkaSettings
from shellwatch.worker.health import LivenessFacts, ReadinessFacts, Verdict, liveness, readiness
from shellwatch.worker.metrics import CONTENT_TYPE, MetricSources, build_info, exposition, worker_registry
from shellwatch.worker.prefilter.stats import Partition, PrefilterStats
from shellwatch.worker.runtime import CorrelationRuntime
from shellwatch.worker.stage_stats import CorrelateStats

__all__ = ["WorkerMonitor", "install_monitoring"]

HEARTBEAT_INTERVAL_S = 1.0


def install_monitoring(
    app: Any,
    *,
    kafka: KafkaSettings,
    health: HealthSettings,
    forwarder: PrefilterStats,
    correlate: CorrelateStats,
    runtime: CorrelationRuntime,
) -> WorkerMonitor:
    """The monitor of a worker app, its heartbeat timer and (when the web server is on) its pages."""
    monitor = WorkerMonitor(
        app, relevant_topic=kafka.relevant_topic, forwarder=forwarder, correlate=correlate, settings=health
    )

    async def heartbeat() -> None:
        monitor.beat()

    app.timer(HEARTBEAT_INTERVAL_S)(heartbeat)
    if kafka.web_enabled:
        sources = MetricSources(
            forwarder=forwarder,
            correlate=correlate,
            pipeline=runtime.pipeline,
            prefilter_group=f"{kafka.app_id}-prefilter",
            correlate_group=kafka.app_id,
            relevant_topic=kafka.relevant_topic,
            correlate_lag=monitor.correlate_lag,
            silent_partitions=monitor.silent_partitions,
            bad_state_records=lambda: runtime.bad_state_records,
            skipped_replays=lambda: runtime.skipped_replays,
            build=build_info(runtime.pipeline.ruleset),
        )
        monitor.install_pages(worker_registry(sources))
    return monitor


class WorkerMonitor:
    """Live facts of one worker app; :meth:`beat` runs every second (a Faust timer)."""

    def __init__(
        self,
        app: Any,
        *,
        relevant_topic: str,
        forwarder: PrefilterStats,
        correlate: CorrelateStats,
        settings: HealthSettings,
        clock: Callable[[], float] = time.monotonic,
        cluster: ClusterReachability = CLUSTER,
    ) -> None:
        self.app = app
        self.cluster = cluster
        self.relevant_topic = relevant_topic
        self.forwarder = forwarder
        self.correlate = correlate
        self.settings = settings
        self.clock = clock
        self.heartbeat_s: float | None = None
        self.prefilter_stopped: str | None = None
        self.prefilter_failure: str | None = None  # why the pre-filter stage last failed (it is started again)
        self.prefilter_failed_s: float | None = None
        self.outage_s: float | None = None  # the last heartbeat that found no Kafka broker answering
        self.correlate_assigned = False
        self.recovered = False
        self.excused_s: float | None = None  # the correlate stage had a reason not to progress until then
        app.on_partitions_revoked.connect(self._revoked)
        app.on_partitions_assigned.connect(self._assigned)
        app.on_rebalance_complete.connect(self._rebalance_complete)

    # -- Faust signals -----------------------------------------------------------------------

    def _revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.correlate_assigned = self.recovered = False
        self.excused_s = self.clock()

    def _assigned(self, sender: Any, /, assigned: Any = (), *args: Any, signal: Any, **kwargs: Any) -> None:
        self.correlate_assigned = True
        self.excused_s = self.clock()
        self.correlate.forget_partitions({tp.partition for tp in assigned if tp.topic == self.relevant_topic})

    def _rebalance_complete(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.recovered = True
        self.excused_s = self.clock()

    def beat(self) -> None:
        now = self.clock()
        self.heartbeat_s = now
        if not self.cluster.reachable:
            self.outage_s = now  # a stage that waits for the cluster is not stuck: restarting us would not help
        if not self.recovered or self.app.in_recovery or not self.cluster.reachable:
            self.excused_s = now

    def prefilter_failed(self, reason: str) -> None:
        """The pre-filter stage failed and will be started again: not ready until its loop turns again."""
        self.prefilter_failure = reason
        self.prefilter_failed_s = self.clock()
        self.forwarder.revoked(list(self.forwarder.assigned_since))  # its consumer and assignment are gone

    def prefilter_running(self) -> bool:
        """Its loop has turned, and turned again since the last failure (if any), and the stage has not ended."""
        beat, failed = self.forwarder.heartbeat_s, self.prefilter_failed_s
        return beat is not None and self.prefilter_stopped is None and (failed is None or beat > failed)

    # -- samples -----------------------------------------------------------------------------

    def correlate_lag(self) -> dict[Partition, int]:
        """Highwater (as last fetched by Faust's consumer) minus the agent's next offset, per partition."""
        try:
            consumer = self.app.consumer
            assignment = [tp for tp in consumer.assignment() if tp.topic == self.relevant_topic]
            highwaters = {tp.partition: consumer.highwater(tp) for tp in assignment}
        except Exception:  # consumer not started (or stopping): no sample rather than a failed scrape
            return {}
        lag = {}
        for partition, highwater in highwaters.items():
            position = self.correlate.positions.get(partition)
            if highwater is not None and highwater >= 0 and position is not None:
                lag[(self.relevant_topic, partition)] = max(0, highwater - position)
        return lag

    def silent_partitions(self) -> int:
        return self.forwarder.silent_partitions(self.clock(), self.settings.silent_partition_s)

    def liveness(self) -> Verdict:
        now = self.clock()
        stage = self.correlate

        def age(since: float | None) -> float | None:
            return None if since is None else now - since

        def excused(since: float | None) -> float | None:  # time waiting for an absent cluster does not count
            return None if since is None else max(since, self.outage_s or since)

        progress = max((t for t in (stage.last_done_s, self.excused_s) if t is not None), default=None)
        facts = LivenessFacts(
            heartbeat_age_s=age(self.heartbeat_s),
            prefilter_beat_age_s=age(excused(self.forwarder.heartbeat_s)),
            prefilter_stopped=self.prefilter_stopped,
            correlate_in_flight_s=age(excused(stage.in_flight_since_s)),
            correlate_quiet_s=age(progress),
            correlate_lag=sum(self.correlate_lag().values()),
        )
        return liveness(facts, self.settings.stall_s)

    def readiness(self) -> Verdict:
        recovery_done = self.recovered and not self.app.in_recovery
        outage_since = self.cluster.unreachable_since_s
        facts = ReadinessFacts(
            prefilter_running=self.prefilter_running(),
            prefilter_assigned=self.forwarder.assignment_complete,
            correlate_assigned=self.correlate_assigned,
            recovery_complete=recovery_done,
            cluster_unreachable_s=None if outage_since is None else max(0.0, self.clock() - outage_since),
            prefilter_failure=None if self.prefilter_running() else self.prefilter_failure,
        )
        return readiness(facts, self.liveness())

    # -- pages -------------------------------------------------------------------------------

    def install_pages(self, registry: Any) -> None:
        """Register the three pages with the app's web server (before it starts)."""
        app, monitor = self.app, self

        @app.page("/metrics", name="shellwatch-metrics")  # type: ignore[untyped-decorator]
        async def metrics(view: Any, request: Any) -> Any:
            return view.bytes(exposition(registry), headers={"Content-Type": CONTENT_TYPE})

        @app.page("/healthz", name="shellwatch-healthz")  # type: ignore[untyped-decorator]
        async def healthz(view: Any, request: Any) -> Any:
            return _verdict(view, monitor.liveness())

        @app.page("/readyz", name="shellwatch-readyz")  # type: ignore[untyped-decorator]
        async def readyz(view: Any, request: Any) -> Any:
            return _verdict(view, monitor.readiness())


def _verdict(view: Any, verdict: Verdict) -> Any:
    return view.bytes(
        orjson.dumps(verdict.body()),
        status=verdict.status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )
