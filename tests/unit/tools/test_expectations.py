"""Expected alerts against observed ones: matched, missing, unexpected, wrong case, not marked replayed."""

from __future__ import annotations

import orjson
import pytest

from shellwatch.tools.expectations import (
    Expectation,
    ExpectationError,
    Observed,
    compare,
    expectation_line,
    expectation_of_alert,
    format_diff,
    load_expectations,
)

SHELL = Expectation("shell-spawned-by-java", "h1", frozenset({"e2"}), "critical", "java_shell_execution_known_bad")
SEQ = Expectation("potential-reverse-shell-via-java", "h1", frozenset({"e1", "e2"}), "medium", None)


def seen(expectation: Expectation, alert_id: str = "a", *, replayed: bool = True) -> Observed:
    return Observed(expectation, alert_id, 0, replayed)


def test_alert_documents_give_their_key_from_quoted_events_in_any_form() -> None:
    alert = {
        "rule": {"id": "potential-reverse-shell-via-java"},
        "host": {"id": "h1"},
        "detection": {
            "severity": "medium",
            "case": None,
            # nested, dotted, and JSON text (the Avro alert form)
            "events": [{"event": {"id": "e1"}}, orjson.dumps({"event.id": "e2"}).decode()],
        },
    }
    assert expectation_of_alert(alert) == SEQ


def test_lines_round_trip_and_alert_documents_are_accepted() -> None:
    detection = {"severity": "critical", "case": SHELL.case, "events": [{"event": {"id": "e2"}}]}
    alert = {"rule": {"id": SHELL.rule_id}, "host": {"id": "h1"}, "detection": detection}
    lines = [expectation_line(SEQ), b"", orjson.dumps(alert)]
    assert load_expectations(lines, "x.ndjson") == [SEQ, SHELL]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[1]", "x.ndjson:1: expected a JSON object"),
        (b'{"rule_id":"r","host_id":"h","event_ids":[],"severity":"low"}', "event_ids"),
        (b'{"rule_id":"r","host_id":"h","event_ids":["e"],"severity":"low","sev":1}', "unknown keys"),
        (b'{"rule_id":"","host_id":"h","event_ids":["e"],"severity":"low"}', "rule_id"),
        (b'{"rule_id":"r","host_id":"h","event_ids":["e"],"severity":"low","case":3}', "case"),
        (b"{", "x.ndjson:1"),
    ],
)
def test_bad_expectation_lines_are_named(line: bytes, message: str) -> None:
    with pytest.raises(ExpectationError, match=message):
        load_expectations([line], "x.ndjson")


def test_the_same_alert_twice_is_refused() -> None:
    with pytest.raises(ExpectationError, match=r"x\.ndjson:2: the same alert is expected twice"):
        load_expectations([expectation_line(SEQ), expectation_line(SEQ)], "x.ndjson")


def test_every_kind_of_difference_is_reported() -> None:
    wrong = Expectation(SHELL.rule_id, "h1", frozenset({"e2"}), "low", "java_shell_execution")
    extra = Expectation(SHELL.rule_id, "h9", frozenset({"e9"}), "low", "java_shell_execution")
    missing = Expectation(SHELL.rule_id, "h3", frozenset({"e3"}), "low", "java_shell_execution")
    observed = [seen(SEQ, "s"), seen(SEQ, "s"), seen(wrong, "w"), seen(extra, "x", replayed=False)]
    diff = compare([SEQ, SHELL, missing], observed, require_replayed=True)
    assert [e for e, _ in diff.matched] == [SEQ]  # delivered twice (at-least-once): counted once
    assert [(e, o.alert_id) for e, o in diff.wrong] == [(SHELL, "w")]
    assert diff.missing == [missing]
    assert [o.alert_id for o in diff.unexpected] == ["x"]
    assert [o.alert_id for o in diff.not_marked_replayed] == ["x"]
    assert not diff.ok
    report = format_diff(diff, {"s": 420})
    assert report[0].startswith("  matched") and report[0].endswith("latency 0.420 s")
    assert any(line.startswith("  WRONG CASE") for line in report)
    assert any("got severity=low case=java_shell_execution" in line for line in report)
    assert any(line.startswith("  MISSING") and "h3" in line for line in report)
    assert any(line.startswith("  UNEXPECTED") and "(alert x)" in line for line in report)
    assert report[-1] == ("expect: FAIL: 1 matched, 1 missing, 1 unexpected, 1 wrong case, 1 not marked replayed")


def test_nothing_expected_and_nothing_seen_passes() -> None:
    diff = compare([], [], require_replayed=True)
    assert diff.ok and format_diff(diff, {}) == ["expect: PASS: 0 matched, 0 missing, 0 unexpected, 0 wrong case"]
