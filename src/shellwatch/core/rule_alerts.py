"""Alert documents for any EQL rule file (DESIGN §2, generalized from the seed rule's alerts).

``rule.id`` is the file's ``rule_id`` (``rule.uuid``, ``rule.name``, ``rule.version`` beside it; a file without
``version``, as detection-rules keeps versions in a lock file, gets ``sha256:`` and the first 12 hex digits of
its digest, so an alert still says which revision ran and the alert schema's string holds; ``rule.reference`` is
the first of the file's ``references``, as for the bundled rules, else empty), severity,
risk and ``threat`` come from the file, ``event.id`` is ``sha256(rule.id|host.id|identity)`` of the event
that completed the sequence (:mod:`shellwatch.core.rule_events`), ``detection.events`` quotes the matched
documents in stage order (masked like every alert), and ``detection.explanation`` says which stage each
event filled, the join key values, and the span against maxspan. Pure code.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import orjson

from shellwatch.core.alerts import alert_id_of, threat_document
from shellwatch.core.redact import mask_document
from shellwatch.core.rule_events import RuleEvent
from shellwatch.core.sequence_engine import JoinKey, SequenceMatch
from shellwatch.ecs.timestamps import format_rfc3339_ms
from shellwatch.rules.eql_rule import EqlRule
from shellwatch.rules.model import RISK_SCORES

__all__ = ["rule_alert"]


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    return value


def _named_key(fields: Sequence[str], key: JoinKey) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in zip(fields, key, strict=True)}


def rule_alert(
    rule: EqlRule,
    match: SequenceMatch,
    *,
    detected_ms: int,
    mask_secrets: bool = True,
) -> dict[str, Any]:
    """The alert for a completed sequence (or, for an event query, one matching event)."""
    events: list[RuleEvent] = [c.payload for c in match.events]
    last = events[-1]
    host_id = last.host_id or ""
    host: dict[str, str] = {"id": host_id}
    host_name = last.host_name or next((e.host_name for e in events if e.host_name), None)
    if host_name is not None:
        host["name"] = host_name
    compiled = rule.compiled
    stages = []
    for position, (candidate, key) in enumerate(zip(match.events, match.keys, strict=True)):
        origin = _origin(rule, position)
        stage = compiled.stages[origin]
        stages.append(
            {
                "stage": position,
                "query_stage": origin,
                "category": stage.category or "any",
                "timestamp_ms": candidate.timestamp_ms,
                "join_key": _named_key(stage.keys, key),
            }
        )
    first_ms, last_ms = match.events[0].timestamp_ms, match.events[-1].timestamp_ms
    explanation: dict[str, Any] = {
        "stages": stages,
        "join_key": stages[-1]["join_key"],
        "span_ms": last_ms - first_ms,
        "maxspan_ms": compiled.maxspan_ms,
        "late": any(c.late for c in match.events),
    }
    return {
        "@timestamp": format_rfc3339_ms(detected_ms),
        "event": {
            "kind": "alert",
            "id": alert_id_of(rule.rule_id, host_id, last.identity),
            "severity": RISK_SCORES[rule.severity],
            "risk_score": rule.risk_score,
        },
        "rule": {
            "id": rule.rule_id,
            "uuid": rule.uuid,
            "name": rule.name,
            "version": rule.version or f"sha256:{rule.digest[:12]}",
            "reference": rule.references[0] if rule.references else "",
        },
        "host": host,
        "threat": threat_document(rule.threat),
        "detection": {
            "severity": rule.severity,
            "case": None,
            "latency_ms": detected_ms - last_ms,
            "ruleset": rule.digest,
            "explanation": explanation,
            "related_alert_ids": [],
            "suppressed_count": 0,
            "replayed": any(e.replayed for e in events),
            "events": [orjson.Fragment(mask_document(e.raw) if mask_secrets else e.raw) for e in events],
        },
    }


def _origin(rule: EqlRule, position: int) -> int:
    """The compiled stage an expanded (``runs``) position belongs to."""
    for index, stage in enumerate(rule.compiled.stages):
        if position < stage.runs:
            return index
        position -= stage.runs
    raise IndexError(position)
