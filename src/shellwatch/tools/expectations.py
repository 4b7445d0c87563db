"""Expected alerts of a replay scenario, and the diff between them and the alerts that arrived. Pure.

An expectation is one NDJSON line::

    {"rule_id": "shell-spawned-by-java", "host_id": "h-1", "event_ids": ["exec-1"],
     "severity": "critical", "case": "java_shell_execution_known_bad"}

An alert is identified by its rule, its host and the ``event.id`` of each matched event (order does not
matter); severity and case are then compared. A full alert document (``shellwatch detect`` output) is
accepted as an expectation too, so ``shellwatch detect capture.ndjson --expectations`` makes a scenario.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shellwatch.ecs.fields import single_keyword
from shellwatch.errors import ExpectationError

__all__ = [
    "AlertKey",
    "Expectation",
    "ExpectationError",
    "Observed",
    "ReplayDiff",
    "compare",
    "expectation_line",
    "expectation_of_alert",
    "format_diff",
    "load_expectations",
]

AlertKey = tuple[str, str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Expectation:
    rule_id: str
    host_id: str
    event_ids: frozenset[str]
    severity: str
    case: str | None

    @property
    def key(self) -> AlertKey:
        return (self.rule_id, self.host_id, self.event_ids)

    def describe(self) -> str:
        ids = ", ".join(sorted(self.event_ids))
        return f"{self.rule_id} host={self.host_id} events=[{ids}] severity={self.severity} case={self.case}"


@dataclass(frozen=True, slots=True)
class Observed:
    """An alert that arrived: what it says, when it arrived, and whether it says it was replayed."""

    expectation: Expectation
    alert_id: str
    arrived_ms: int
    replayed: bool


def _event_ids(events: Iterable[Any]) -> frozenset[str]:
    ids: set[str] = set()
    for event in events:
        doc = orjson.loads(event) if isinstance(event, str | bytes) else event
        if isinstance(doc, Mapping):
            event_id = single_keyword(doc, "event.id")
            if event_id is not None:
                ids.add(event_id)
    return frozenset(ids)


def expectation_of_alert(alert: Mapping[str, Any]) -> Expectation:
    """What an alert document (JSON form, or the Avro record with events as JSON text) asserts."""
    detection = alert.get("detection") or {}
    return Expectation(
        rule_id=str((alert.get("rule") or {}).get("id")),
        host_id=str((alert.get("host") or {}).get("id")),
        event_ids=_event_ids(detection.get("events") or []),
        severity=str(detection.get("severity")),
        case=detection.get("case"),
    )


def expectation_line(expectation: Expectation) -> bytes:
    return orjson.dumps(
        {
            "rule_id": expectation.rule_id,
            "host_id": expectation.host_id,
            "event_ids": sorted(expectation.event_ids),
            "severity": expectation.severity,
            "case": expectation.case,
        }
    )


def _parse_expectation(doc: Any) -> Expectation:
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    if "rule" in doc and "detection" in doc:
        return expectation_of_alert(doc)
    unknown = set(doc) - {"rule_id", "host_id", "event_ids", "severity", "case", "comment"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    for name in ("rule_id", "host_id", "severity"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise ValueError(f"{name}: expected a non-empty string")
    ids = doc.get("event_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ValueError("event_ids: expected a non-empty list of strings")
    case = doc.get("case")
    if case is not None and not isinstance(case, str):
        raise ValueError("case: expected a string or null")
    return Expectation(doc["rule_id"], doc["host_id"], frozenset(ids), doc["severity"], case)


def load_expectations(lines: Iterable[bytes], source: str) -> list[Expectation]:
    """Expectations from NDJSON lines (blank lines skipped). Raises :class:`ExpectationError`."""
    out: list[Expectation] = []
    keys: set[AlertKey] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            expectation = _parse_expectation(orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise ExpectationError(f"{source}:{number}: {exc}") from None
        if expectation.key in keys:
            raise ExpectationError(f"{source}:{number}: the same alert is expected twice")
        keys.add(expectation.key)
        out.append(expectation)
    return out


@dataclass(slots=True)
class ReplayDiff:
    matched: list[tuple[Expectation, Observed]] = field(default_factory=list)
    missing: list[Expectation] = field(default_factory=list)
    unexpected: list[Observed] = field(default_factory=list)
    wrong: list[tuple[Expectation, Observed]] = field(default_factory=list)
    not_marked_replayed: list[Observed] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong or self.not_marked_replayed)


def compare(expected: Iterable[Expectation], observed: Iterable[Observed], *, require_replayed: bool) -> ReplayDiff:
    """Expected against observed alerts; an alert delivered twice (same id: at-least-once) counts once."""
    first: dict[AlertKey, Observed] = {}
    for alert in observed:
        first.setdefault(alert.expectation.key, alert)
    diff = ReplayDiff()
    for expectation in expected:
        got = first.pop(expectation.key, None)
        if got is None:
            diff.missing.append(expectation)
        elif (got.expectation.severity, got.expectation.case) != (expectation.severity, expectation.case):
            diff.wrong.append((expectation, got))
        else:
            diff.matched.append((expectation, got))
    diff.unexpected.extend(first.values())
    if require_replayed:
        seen = [o for _, o in diff.matched] + [o for _, o in diff.wrong] + diff.unexpected
        diff.not_marked_replayed.extend(o for o in seen if not o.replayed)
    return diff


def format_diff(diff: ReplayDiff, latency_ms: Mapping[str, int | None]) -> list[str]:
    """Report lines: each alert with its verdict (and latency, by alert id), then a one-line result."""
    lines: list[str] = []
    for expectation, got in diff.matched:
        latency = latency_ms.get(got.alert_id)
        shown = f"  latency {latency / 1000:.3f} s" if latency is not None else ""
        lines.append(f"  matched     {expectation.describe()}{shown}")
    for expectation, got in diff.wrong:
        lines.append(f"  WRONG CASE  {expectation.describe()}")
        lines.append(f"              got severity={got.expectation.severity} case={got.expectation.case}")
    lines.extend(f"  MISSING     {expectation.describe()}" for expectation in diff.missing)
    lines.extend(f"  UNEXPECTED  {got.expectation.describe()} (alert {got.alert_id})" for got in diff.unexpected)
    lines.extend(
        f"  NOT MARKED  {got.expectation.describe()}: detection.replayed is not true"
        for got in diff.not_marked_replayed
    )
    verdict = "PASS" if diff.ok else "FAIL"
    lines.append(
        f"expect: {verdict}: {len(diff.matched)} matched, {len(diff.missing)} missing, "
        f"{len(diff.unexpected)} unexpected, {len(diff.wrong)} wrong case"
        + (f", {len(diff.not_marked_replayed)} not marked replayed" if diff.not_marked_replayed else "")
    )
    return lines
