"""Anchoring an alert to the Kafka timestamp of the record that carried its exec."""

from __future__ import annotations

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.event_codec import Decoded, decode_record
from shellwatch.worker.alert_latency import RecordTimes
from shellwatch.worker.runtime import CorrelationRuntime
from tests.shared import RULE, SHELL_RULE, DictStore
from tests.unit.builders import T0, conn_doc, exec_doc

RULE_IDS = (RULE.meta.id, SHELL_RULE.meta.id)


def events(doc: dict[str, object]) -> Decoded:
    decoded = decode_record(orjson.dumps(doc))
    assert isinstance(decoded, Decoded)
    return decoded


def test_both_alerts_of_an_exec_find_its_record_timestamp() -> None:
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    conn, shell = conn_doc(T0), exec_doc(T0 + 1000)
    times = RecordTimes(RULE_IDS)
    times.note(events(conn).events, 111)  # connections are never an alert's anchor
    times.note(events(shell).events, 222)
    alerts = [a for doc in (conn, shell) for a in pipeline.process(orjson.dumps(doc), T0).alerts] + pipeline.flush(T0)
    assert {a["rule"]["id"] for a in alerts} == set(RULE_IDS)
    assert [times.pop(a["event"]["id"]) for a in alerts] == [222, 222]
    assert [times.pop(a["event"]["id"]) for a in alerts] == [None, None]  # each alert is anchored once
    assert len(times) == 0


def test_bounded_oldest_first() -> None:
    times = RecordTimes((RULE.meta.id,), capacity=2)
    docs = [exec_doc(T0 + i, pid=1000 + i) for i in range(3)]
    for i, doc in enumerate(docs):
        times.note(events(doc).events, i)
    assert len(times) == 2
    pipeline = Pipeline(RULE, PipelineConfig())
    pipeline.process(orjson.dumps(conn_doc(T0 - 1)), T0)
    ids = [a["event"]["id"] for doc in docs for a in pipeline.process(orjson.dumps(doc), T0).alerts]
    ids += [a["event"]["id"] for a in pipeline.flush(T0)]
    assert len(ids) == 1  # one connection completes one sequence: the first exec's, whose note was dropped
    assert times.pop(ids[0]) is None
    with pytest.raises(ValueError, match="capacity"):
        RecordTimes(RULE_IDS, capacity=0)


def test_the_runtime_notes_record_timestamps_it_is_given() -> None:
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig(), SHELL_RULE), DictStore())
    runtime.handle(orjson.dumps(conn_doc(T0)), {}, 0, T0, record_ms=5)
    alerts = runtime.handle(orjson.dumps(exec_doc(T0 + 1000)), {}, 0, T0, record_ms=7)
    alerts += runtime.pipeline.flush(T0)
    assert len(alerts) == 2
    assert {runtime.record_times.pop(a["event"]["id"]) for a in alerts} == {7}
    runtime.handle(orjson.dumps(exec_doc(T0 + 2000, pid=5)), {}, 0, T0)  # no timestamp: nothing noted
    assert len(runtime.record_times) == 0
