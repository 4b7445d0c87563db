"""Workers started on a backlog lose and mis-pair nothing, whatever the fetch size (DESIGN §4).

The backlog is a live-ordered feed of Java hosts on 3 partitions at a low rate, so one 1 MiB fetch of a
partition spans minutes of event time: a stage that forwarded whole fetches as they came would send one
topic's records far ahead of the other's, and the correlator would give up on them. The alerts topic is
compared with offline detection of the same documents.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.workload import account, java_hosts, missing_lines, require_exact
from tests.integration.deployment import LIVE, Deployment
from tests.shared import CUPS_FILE_RULE, cups_sequence, offline_alerts, operator_rules

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]


@pytest.mark.parametrize(
    ("fetch_bytes", "with_rules"),
    [(1_048_576, ""), (8 * 1_048_576, ""), (1_048_576, "java"), (1_048_576, "java+file")],
    ids=["1MiB", "8MiB", "1MiB-elastic-rules", "1MiB-elastic-rules-file-input"],
)
def test_two_workers_started_on_a_backlog_raise_every_alert_once(
    kafka_bootstrap: str, tmp_path: Path, fetch_bytes: int, with_rules: str
) -> None:
    """``with_rules``: three of Elastic's Java rules run beside the bundled ones (``SHELLWATCH_RULES``); the
    reverse-shell one fires on every sequence the bundled rule does, through the operator rules' own engine.
    ``java+file`` adds a rule whose second stage reads file events: the workers read a third input topic, whose
    few records (foomatic-rip shells' files, on 6 more hosts) complete that rule's sequences, and every held
    event of the operator rules waits for all three inputs."""
    seed = fetch_bytes % 97 + len(with_rules)
    start_ms = LIVE - 3_600_000
    docs = java_hosts(hosts=24, span_ms=600_000, period_ms=4_000, start_ms=start_ms, seed=seed)
    extra = (CUPS_FILE_RULE,) if with_rules == "java+file" else ()
    if extra:
        cups = [d for n in range(6) for d in cups_sequence(f"cups-{n}", start_ms + 60_000 + n * 80_000)]
        docs = sorted([*docs, *cups], key=lambda d: str(d["@timestamp"]))
    deployment = Deployment(kafka_bootstrap, tmp_path, other_inputs=("file",) if extra else ())
    rules = operator_rules(tmp_path / "rules", extra) if with_rules else ()
    if rules:
        deployment.extra_env["SHELLWATCH_RULES"] = str(tmp_path / "rules")
    offline = offline_alerts(docs, rules)
    expected = {str(a["event"]["id"]) for a in offline}
    deployment.extra_env["SHELLWATCH_MAX_PARTITION_FETCH_BYTES"] = str(fetch_bytes)
    try:
        deployment.produce(docs)
        assert deployment.source_disorder() == [], "the feed itself is out of order: the accounting would not be fair"
        started = time.monotonic()
        deployment.start_worker()
        deployment.start_worker()
        alerts = deployment.alerts_for(len(expected), timeout_s=240, settle_s=5)
        loaded = f", {len(rules)} of Elastic's rules loaded" if rules else ""
        result = account(f"backlog, 2 workers, fetch {fetch_bytes} B{loaded}", expected, alerts)
        print(f"{result.line()}; {len(docs)} events, caught up in {time.monotonic() - started:.1f} s")
        print("\n".join(missing_lines(offline, alerts)))
        require_exact(result, deployment.log_digest)
    finally:
        deployment.stop()
