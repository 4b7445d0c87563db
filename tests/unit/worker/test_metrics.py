"""The worker's /metrics exposition: names, types and values read from the stages' stats at scrape time."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.worker.metrics import CONTENT_TYPE, METRICS, MetricSources, build_info, exposition, worker_registry
from shellwatch.worker.prefilter.stats import AssignmentListener, Partition, PrefilterStats
from shellwatch.worker.stage_stats import LATENCY_BUCKETS_S, CorrelateStats, LatencyHistogram
from tests.shared import RULE, SHELL_RULE
from tests.unit.builders import T0, conn_doc, exec_doc


def sources(
    forwarder: PrefilterStats | None = None,
    stage: CorrelateStats | None = None,
    pipeline: Pipeline | None = None,
    lag: Mapping[Partition, int] | None = None,
    silent: int = 0,
) -> MetricSources:
    pipeline = pipeline or Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    return MetricSources(
        forwarder=forwarder or PrefilterStats(),
        correlate=stage or CorrelateStats(),
        pipeline=pipeline,
        prefilter_group="sw-prefilter",
        correlate_group="sw",
        relevant_topic="sw-relevant",
        correlate_lag=lambda: dict(lag or {}),
        silent_partitions=lambda: silent,
        bad_state_records=lambda: 3,
        skipped_replays=lambda: 2,
        build=build_info(pipeline.ruleset),
    )


def scrape(src: MetricSources) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = exposition(worker_registry(src)).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_every_listed_metric_is_exposed_with_its_type_and_unit_conventions() -> None:
    text = exposition(worker_registry(sources())).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    exposed = {name + ("_total" if f.type == "counter" else "") for name, f in families.items()}
    assert exposed == set(METRICS)
    for name, family in families.items():
        assert name.startswith("shellwatch_")
        assert family.documentation == METRICS[name + ("_total" if family.type == "counter" else "")]
    assert families["shellwatch_detection_latency_seconds"].type == "histogram"
    assert families["shellwatch_consumer_lag_records"].type == "gauge"
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_prefilter_stage_counters_per_topic_and_outcome() -> None:
    forwarder = PrefilterStats(forwarded=7, other_category=2, no_match=3, far_future=1)
    forwarder.consumed.update({"net": 1000, "proc": 500})
    forwarder.prefiltered_by_topic.update({"net": 990, "proc": 495})
    forwarder.dead_letters.update({"invalid_json": 4, "not_an_object": 1})
    forwarder.lag[("net", 0)] = 12
    forwarder.lag[("proc", 2)] = 0
    samples = scrape(sources(forwarder=forwarder, lag={("sw-relevant", 1): 5}, silent=2))
    assert value(samples, "shellwatch_records_consumed_total", stage="prefilter", topic="net") == 1000
    assert value(samples, "shellwatch_records_consumed_total", stage="prefilter", topic="proc") == 500
    assert value(samples, "shellwatch_records_prefiltered_total", topic="net") == 990
    assert value(samples, "shellwatch_records_decoded_total", outcome="forwarded") == 7
    assert value(samples, "shellwatch_records_decoded_total", outcome="other_category") == 2
    assert value(samples, "shellwatch_records_decoded_total", outcome="no_match") == 3
    assert value(samples, "shellwatch_dead_letters_total", stage="prefilter", reason="invalid_json") == 4
    assert value(samples, "shellwatch_far_future_events_total") == 1
    assert value(samples, "shellwatch_consumer_lag_records", group="sw-prefilter", topic="net", partition="0") == 12
    assert value(samples, "shellwatch_consumer_lag_records", group="sw-prefilter", topic="proc", partition="2") == 0
    assert value(samples, "shellwatch_consumer_lag_records", group="sw", topic="sw-relevant", partition="1") == 5
    assert value(samples, "shellwatch_silent_partitions") == 2
    assert value(samples, "shellwatch_bad_state_records_total") == 3
    assert value(samples, "shellwatch_replayed_records_skipped_total") == 2


def test_core_state_and_counters_are_read_live_not_copied() -> None:
    pipeline = Pipeline(RULE, PipelineConfig(max_hosts=1), SHELL_RULE)
    src = sources(pipeline=pipeline)
    before = scrape(src)
    assert value(before, "shellwatch_state_hosts") == 0
    pipeline.process(orjson.dumps(conn_doc(T0)), T0)  # held until the process stream catches up
    during = scrape(src)
    assert value(during, "shellwatch_state_hosts") == 1
    assert value(during, "shellwatch_state_held_events") == 1
    pipeline.process(orjson.dumps(conn_doc(T0, host="host-b")), T0)  # evicts host-a (max_hosts=1)
    after = scrape(src)
    assert value(after, "shellwatch_state_evictions_total", kind="host") == 1
    assert value(after, "shellwatch_state_pending_connections") == 0
    late = Pipeline(RULE, PipelineConfig(allowed_lateness_ms=0), SHELL_RULE)
    late.process(orjson.dumps(exec_doc(T0 + 10_000)), T0)
    late.process(orjson.dumps(conn_doc(T0 + 20_000)), T0)  # releases the exec
    late.process(orjson.dumps(conn_doc(T0)), T0)  # before what the host already released
    assert value(scrape(sources(pipeline=late)), "shellwatch_late_events_total") == late.correlator.stats.late == 1


def test_alerts_by_rule_case_and_severity_and_the_latency_histogram() -> None:
    stage = CorrelateStats()
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    alerts = [a for doc in (conn_doc(T0), exec_doc(T0 + 1000)) for a in pipeline.process(orjson.dumps(doc), T0).alerts]
    alerts += pipeline.flush(T0)
    (shell,) = [a for a in alerts if a["rule"]["id"] == "shell-spawned-by-java"]
    (sequence,) = [a for a in alerts if a["rule"]["id"] == "potential-reverse-shell-via-java"]
    stage.delivered(shell, 0.3)
    stage.delivered(sequence, 2.0)
    stage.delivered(shell, None)  # a duplicate after a restart: no record timestamp known
    stage.dead_letters["KeyError"] += 1
    samples = scrape(sources(stage=stage, pipeline=pipeline))
    case, severity = shell["detection"]["case"], shell["detection"]["severity"]
    assert (case, severity) == ("java_shell_execution_suspicious", "medium")
    assert value(samples, "shellwatch_alerts_total", rule="shell-spawned-by-java", case=case, severity=severity) == 2
    sequence_labels = {"rule": "potential-reverse-shell-via-java", "case": "", "severity": "medium"}
    assert value(samples, "shellwatch_alerts_total", **sequence_labels) == 1
    assert value(samples, "shellwatch_dead_letters_total", stage="correlate", reason="KeyError") == 1
    assert value(samples, "shellwatch_detection_latency_seconds_count") == 2
    assert value(samples, "shellwatch_detection_latency_seconds_sum") == pytest.approx(2.3)
    assert value(samples, "shellwatch_detection_latency_seconds_bucket", le="0.25") == 0
    assert value(samples, "shellwatch_detection_latency_seconds_bucket", le="0.5") == 1
    assert value(samples, "shellwatch_detection_latency_seconds_bucket", le="2.5") == 2
    assert value(samples, "shellwatch_detection_latency_seconds_bucket", le="+Inf") == 2
    assert value(samples, "shellwatch_detection_latency_unanchored_total") == 1


@pytest.mark.parametrize(
    ("observed", "bucket"),
    [
        (0.0, 0),
        (0.05, 0),
        (0.0500001, 1),
        (-3.0, 0),
        (60.0, len(LATENCY_BUCKETS_S) - 1),
        (61.0, len(LATENCY_BUCKETS_S)),
    ],
)
def test_histogram_buckets_are_inclusive_upper_bounds(observed: float, bucket: int) -> None:
    histogram = LatencyHistogram()
    histogram.observe(observed)
    assert histogram.counts[bucket] == 1 and histogram.count == 1
    assert histogram.sum_s == max(0.0, observed)
    cumulative = histogram.cumulative()
    assert [count for _, count in cumulative] == [float(i >= bucket) for i in range(len(LATENCY_BUCKETS_S) + 1)]
    assert cumulative[-1][0] == "+Inf"


def test_histogram_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        LatencyHistogram(bounds_s=(1.0, 0.5))


def test_two_workers_in_one_process_have_separate_registries() -> None:
    first, second = PrefilterStats(), PrefilterStats()
    first.consumed["net"] = 1
    second.consumed["net"] = 2
    a, b = scrape(sources(forwarder=first)), scrape(sources(forwarder=second))
    assert value(a, "shellwatch_records_consumed_total", stage="prefilter", topic="net") == 1
    assert value(b, "shellwatch_records_consumed_total", stage="prefilter", topic="net") == 2


def test_build_info_names_the_versions_and_the_ruleset() -> None:
    src = sources()
    samples = [s for s in _samples(src) if s.name == "shellwatch_build_info"]
    assert len(samples) == 1 and samples[0].value == 1
    labels = samples[0].labels
    assert labels["ruleset"] == src.pipeline.ruleset
    assert set(labels) == {"version", "python", "faust", "aiokafka", "ruleset"}
    assert labels["faust"].startswith("0.15.")


def _samples(src: MetricSources) -> list[Sample]:
    text = exposition(worker_registry(src)).decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def test_rebalances_are_timed_from_revocation_to_assignment_per_group() -> None:
    forwarder, stage = PrefilterStats(), CorrelateStats()
    listener = AssignmentListener(forwarder, iter([10.0, 13.5]).__next__)
    listener.on_partitions_revoked([])  # the first join: nothing to revoke yet
    listener.on_partitions_assigned([("net", 0)])
    stage.rebalances.revoked(20.0)
    stage.rebalances.revoked(21.0)  # a second revocation inside the same rebalance does not restart it
    stage.rebalances.assigned(26.0)
    stage.rebalances.assigned(27.0)  # an assignment without a revocation first is not a rebalance
    samples = scrape(sources(forwarder=forwarder, stage=stage))
    assert value(samples, "shellwatch_rebalances_total", group="sw-prefilter") == 1
    assert value(samples, "shellwatch_rebalance_seconds_total", group="sw-prefilter") == 3.5
    assert value(samples, "shellwatch_rebalances_total", group="sw") == 1
    assert value(samples, "shellwatch_rebalance_seconds_total", group="sw") == 6.0
    assert stage.rebalances.last_s == 6.0
