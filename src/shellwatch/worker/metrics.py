"""The worker's Prometheus metrics, read at scrape time from the counters the stages keep as data.

Nothing here counts: the core (:class:`~shellwatch.core.correlate.CorrelatorStats`, the correlator's state
sizes), the pre-filter stage (:class:`~shellwatch.worker.prefilter.stats.PrefilterStats`) and the correlate
stage (:class:`~shellwatch.worker.stage_stats.CorrelateStats`) keep plain counters, and
:class:`WorkerCollector` turns them into metric families when ``/metrics`` is scraped. Each app gets
its own :class:`~prometheus_client.CollectorRegistry` (:func:`worker_registry`), so several workers in
one process never share or clash. The metric list with one line each is :data:`METRICS`.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from shellwatch.core.host_rules import HostRules
from shellwatch.core.pipeline import Pipeline
from shellwatch.worker.prefilter.stats import Partition, PrefilterStats
from shellwatch.worker.stage_stats import CorrelateStats, Rebalances

__all__ = ["CONTENT_TYPE", "METRICS", "MetricSources", "WorkerCollector", "build_info", "exposition", "worker_registry"]

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4

#: name -> help, counters with their ``_total`` sample name (the README's metrics list comes from here).
METRICS: Final[dict[str, str]] = {
    "shellwatch_build_info": "Always 1; labels: versions (shellwatch, python, faust, aiokafka), ruleset digest.",
    "shellwatch_records_consumed_total": "Records read, by stage and topic (prefilter: the input topics; "
    "correlate: the relevant topic, progress markers included).",
    "shellwatch_records_prefiltered_total": "Input records the pre-filter dropped undecoded, by topic.",
    "shellwatch_records_decoded_total": "Input records that passed the pre-filter and decoded, by outcome: "
    "forwarded (network/process events), other_category, or no_match (events no loaded rule can match).",
    "shellwatch_dead_letters_total": "Records sent to the dead-letter topic, by stage and reason "
    "(the decode error kind, or the exception class in the correlate stage).",
    "shellwatch_alerts_total": "Alerts delivered, by rule, case (the shell rule's severity case; empty for the "
    "sequence rule) and severity.",
    "shellwatch_detection_latency_seconds": "From the Kafka record timestamp of the input record that carried the "
    "alert's exec to the alert's delivery.",
    "shellwatch_detection_latency_unanchored_total": "Alerts delivered whose exec record timestamp was unknown "
    "(after a restart or rebalance); not in the latency histogram.",
    "shellwatch_state_hosts": "Hosts the correlator holds state for.",
    "shellwatch_state_pending_connections": "Qualifying connections waiting for their exec.",
    "shellwatch_state_held_events": "Events held until the host's other stream catches up.",
    "shellwatch_consumer_lag_records": "Highwater minus position per assigned partition, by consumer group "
    "(<app id>-prefilter: the input topics; <app id>: the relevant topic).",
    "shellwatch_late_events_total": "Qualifying events that arrived after their host had moved past their "
    "timestamp (beyond the allowed lateness, or behind a progress marker); applied at once, best effort.",
    "shellwatch_far_future_events_total": "Events whose @timestamp is far ahead of their Kafka record timestamp.",
    "shellwatch_alignment_released_total": "Kept input records released by the prefilter stage's record-time "
    "merge of its assigned partitions.",
    "shellwatch_alignment_wait_seconds_total": "Time those records waited in the merge for the other partitions "
    "to be read past them (divide by shellwatch_alignment_released_total for the mean).",
    "shellwatch_alignment_buffered_records": "Kept input records waiting in the merge now (not yet committed).",
    "shellwatch_alignment_idle_releases_total": "Of those released, the records a caught-up partition with nothing "
    "buffered held back for SHELLWATCH_ALIGNMENT_IDLE_MS (it was not read past their time).",
    "shellwatch_state_evictions_total": "State forced out by a cap, by kind: host (max hosts), connection "
    "(max pending per host), held (held events applied early: max held per host).",
    "shellwatch_silent_partitions": "Assigned input partitions without a record for longer than "
    "SHELLWATCH_SILENT_PARTITION_S.",
    "shellwatch_alerts_suppressed_total": "Shell alerts folded into an earlier alert of their group.",
    "shellwatch_bad_state_records_total": "Table state records that could not be restored.",
    "shellwatch_rebalances_total": "Rebalances of each consumer group this member took part in (the first join "
    "included).",
    "shellwatch_rebalance_seconds_total": "Time those rebalances left this member without partitions, from the "
    "revocation to the new assignment, by consumer group.",
    "shellwatch_replayed_records_skipped_total": "Events of forwarded records whose source position the host's "
    "state had applied already (re-forwarded or re-read after a crash or rebalance), skipped.",
    "shellwatch_rule_stage_events_total": "SHELLWATCH_RULES rules: events that filled a stage, by rule and query "
    "stage (an event may fill several).",
    "shellwatch_rule_excepted_events_total": "SHELLWATCH_RULES rules: events left out by an exception item, by "
    "rule and item (list name: item name).",
    "shellwatch_rule_pending_sequences": "SHELLWATCH_RULES rules: sequences waiting for their next stage, by rule.",
    "shellwatch_rule_evictions_total": "SHELLWATCH_RULES rules: join keys evicted by the per-rule key cap, by rule.",
    "shellwatch_rule_held_events": "SHELLWATCH_RULES rules: candidates held until every input of their host "
    "has gone past them.",
    "shellwatch_rule_late_events_total": "SHELLWATCH_RULES rules: candidates that arrived after their host had "
    "applied past them; applied at once, best effort.",
}


def _help(name: str) -> str:
    return METRICS[name]


def build_info(ruleset: str) -> dict[str, str]:
    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {
        "version": version("shellwatch"),
        "python": platform.python_version(),
        "faust": version("faust-streaming"),
        "aiokafka": version("aiokafka"),
        "ruleset": ruleset,
    }


@dataclass(frozen=True, slots=True)
class MetricSources:
    """Where the numbers live; the callables are read at scrape time."""

    forwarder: PrefilterStats
    correlate: CorrelateStats
    pipeline: Pipeline
    prefilter_group: str
    correlate_group: str
    relevant_topic: str
    correlate_lag: Callable[[], Mapping[Partition, int]]
    silent_partitions: Callable[[], int]
    bad_state_records: Callable[[], int]
    skipped_replays: Callable[[], int]
    build: Mapping[str, str]


class WorkerCollector:
    """A prometheus_client custom collector over :class:`MetricSources`."""

    def __init__(self, sources: MetricSources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        src = self.sources
        fwd, stage, correlator = src.forwarder, src.correlate, src.pipeline.correlator
        build = GaugeMetricFamily("shellwatch_build_info", _help("shellwatch_build_info"), labels=sorted(src.build))
        build.add_metric([src.build[k] for k in sorted(src.build)], 1)
        yield build

        consumed = CounterMetricFamily(
            "shellwatch_records_consumed", _help("shellwatch_records_consumed_total"), labels=["stage", "topic"]
        )
        for topic, count in sorted(fwd.consumed.items()):
            consumed.add_metric(["prefilter", topic], count)
        consumed.add_metric(["correlate", src.relevant_topic], stage.records)
        yield consumed

        prefiltered = CounterMetricFamily(
            "shellwatch_records_prefiltered", _help("shellwatch_records_prefiltered_total"), labels=["topic"]
        )
        for topic, count in sorted(fwd.prefiltered_by_topic.items()):
            prefiltered.add_metric([topic], count)
        yield prefiltered

        decoded = CounterMetricFamily(
            "shellwatch_records_decoded", _help("shellwatch_records_decoded_total"), labels=["outcome"]
        )
        for outcome, count in (
            ("forwarded", fwd.forwarded),
            ("other_category", fwd.other_category),
            ("no_match", fwd.no_match),
        ):
            decoded.add_metric([outcome], count)
        yield decoded

        dead = CounterMetricFamily(
            "shellwatch_dead_letters", _help("shellwatch_dead_letters_total"), labels=["stage", "reason"]
        )
        for stage_name, counts in (("prefilter", fwd.dead_letters), ("correlate", stage.dead_letters)):
            for reason, count in sorted(counts.items()):
                dead.add_metric([stage_name, reason], count)
        yield dead

        alerts = CounterMetricFamily(
            "shellwatch_alerts", _help("shellwatch_alerts_total"), labels=["rule", "case", "severity"]
        )
        for (rule, case, severity), count in sorted(stage.alerts.items()):
            alerts.add_metric([rule, case, severity], count)
        yield alerts

        latency = HistogramMetricFamily(
            "shellwatch_detection_latency_seconds", _help("shellwatch_detection_latency_seconds")
        )
        latency.add_metric([], stage.latency.cumulative(), stage.latency.sum_s)
        yield latency
        yield _counter("shellwatch_detection_latency_unanchored_total", stage.latency_unanchored)

        yield _gauge("shellwatch_state_hosts", correlator.host_count)
        yield _gauge("shellwatch_state_pending_connections", correlator.pending_count)
        yield _gauge("shellwatch_state_held_events", correlator.held_count)

        lag = GaugeMetricFamily(
            "shellwatch_consumer_lag_records",
            _help("shellwatch_consumer_lag_records"),
            labels=["group", "topic", "partition"],
        )
        for group, samples in ((src.prefilter_group, fwd.lag), (src.correlate_group, src.correlate_lag())):
            for (topic, partition), behind in sorted(samples.items()):
                lag.add_metric([group, topic, str(partition)], max(0, behind))
        yield lag

        stats = correlator.stats
        yield _counter("shellwatch_late_events_total", stats.late)
        yield _counter("shellwatch_far_future_events_total", fwd.far_future)
        yield _counter("shellwatch_alignment_released_total", fwd.aligned)
        yield _counter("shellwatch_alignment_wait_seconds_total", fwd.alignment_wait_ms / 1000)
        yield _gauge("shellwatch_alignment_buffered_records", fwd.buffered)
        yield _counter("shellwatch_alignment_idle_releases_total", fwd.idle_releases)
        evictions = CounterMetricFamily(
            "shellwatch_state_evictions", _help("shellwatch_state_evictions_total"), labels=["kind"]
        )
        evictions.add_metric(["host"], stats.evicted_hosts)
        evictions.add_metric(["connection"], stats.evicted_connections)
        evictions.add_metric(["held"], stats.forced_releases)
        yield evictions
        yield _gauge("shellwatch_silent_partitions", src.silent_partitions())
        yield _counter("shellwatch_alerts_suppressed_total", src.pipeline.stats.suppressed)
        yield _counter("shellwatch_bad_state_records_total", src.bad_state_records())
        yield _counter("shellwatch_replayed_records_skipped_total", src.skipped_replays())
        yield from _rebalance_families({src.prefilter_group: fwd.rebalances, src.correlate_group: stage.rebalances})
        yield from _rule_families(src.pipeline.host_rules)


def _rule_families(rules: HostRules | None) -> Iterator[Metric]:
    """The SHELLWATCH_RULES rules' families (without samples, and gauges at 0, when none are loaded)."""
    stages = CounterMetricFamily(
        "shellwatch_rule_stage_events", _help("shellwatch_rule_stage_events_total"), labels=["rule", "stage"]
    )
    for (rule_id, stage), count in sorted(rules.stats.stage_events.items() if rules is not None else ()):
        stages.add_metric([rule_id, str(stage)], count)
    yield stages
    excepted = CounterMetricFamily(
        "shellwatch_rule_excepted_events", _help("shellwatch_rule_excepted_events_total"), labels=["rule", "item"]
    )
    for (rule_id, item), count in sorted(rules.stats.excepted.items() if rules is not None else ()):
        excepted.add_metric([rule_id, item], count)
    yield excepted
    pending = GaugeMetricFamily(
        "shellwatch_rule_pending_sequences", _help("shellwatch_rule_pending_sequences"), labels=["rule"]
    )
    evicted = CounterMetricFamily(
        "shellwatch_rule_evictions", _help("shellwatch_rule_evictions_total"), labels=["rule"]
    )
    for rule_id, waiting, by_cap in rules.per_rule() if rules is not None else []:
        pending.add_metric([rule_id], waiting)
        evicted.add_metric([rule_id], by_cap)
    yield pending
    yield evicted
    yield _gauge("shellwatch_rule_held_events", rules.held_count if rules is not None else 0)
    yield _counter("shellwatch_rule_late_events_total", rules.stats.late if rules is not None else 0)


def _rebalance_families(by_group: Mapping[str, Rebalances]) -> tuple[CounterMetricFamily, CounterMetricFamily]:
    rebalances = CounterMetricFamily("shellwatch_rebalances", _help("shellwatch_rebalances_total"), labels=["group"])
    seconds = CounterMetricFamily(
        "shellwatch_rebalance_seconds", _help("shellwatch_rebalance_seconds_total"), labels=["group"]
    )
    for group, done in by_group.items():
        rebalances.add_metric([group], done.count)
        seconds.add_metric([group], done.seconds_total)
    return rebalances, seconds


def _counter(name: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name.removesuffix("_total"), _help(name), value=value)


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _help(name), value=value)


def worker_registry(sources: MetricSources) -> CollectorRegistry:
    """A registry of this worker's own (not prometheus_client's global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(sources))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition format (0.0.4) of everything in ``registry``."""
    return generate_latest(registry)
