"""Alert documents (ECS, DESIGN §2): deterministic ids, severities, MITRE threat, matched events.

Building only: their wire forms (JSON, Avro) are :mod:`shellwatch.formats.alert_codec`.
``detection.events`` quotes each matched source document as received (its bytes are spliced into
the output, so numbers are never re-encoded), except where :mod:`shellwatch.core.redact` masks secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from shellwatch.core.classify import Classification
from shellwatch.core.correlate import Match
from shellwatch.core.redact import mask_document
from shellwatch.ecs.events import Event, ProcessEvent
from shellwatch.ecs.timestamps import format_rfc3339_ms
from shellwatch.rules.model import RISK_SCORES, MitreRef, RuleMeta, Severity, ThreatEntry

__all__ = [
    "alert_id",
    "alert_id_of",
    "exec_identity",
    "rule_document",
    "sequence_alert",
    "shell_alert",
    "threat_document",
]


def exec_identity(event: ProcessEvent) -> str:
    """``event.id``, else ``process.entity_id``, else the sha256 hex of the raw record."""
    if event.event_id is not None:
        return event.event_id
    if event.entity_id is not None:
        return event.entity_id
    return hashlib.sha256(event.raw).hexdigest()


def alert_id(rule_id: str, host_id: str, execution: ProcessEvent) -> str:
    return alert_id_of(rule_id, host_id, exec_identity(execution))


def alert_id_of(rule_id: str, host_id: str, identity: str) -> str:
    """sha256 hex of ``rule.id|host.id|identity``, the identity of the event that completed the detection."""
    text = f"{rule_id}|{host_id}|{identity}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _mitre(ref: MitreRef) -> dict[str, str]:
    return {"id": ref.id, "name": ref.name, "reference": ref.reference}


def threat_document(threat: Sequence[ThreatEntry]) -> list[dict[str, Any]]:
    """ECS ``threat``: per entry its framework, tactic and techniques (each with its subtechniques, if any)."""
    out: list[dict[str, Any]] = []
    for entry in threat:
        techniques = []
        for technique, subtechniques in entry.techniques:
            doc: dict[str, Any] = _mitre(technique)
            if subtechniques:
                doc["subtechnique"] = [_mitre(s) for s in subtechniques]
            techniques.append(doc)
        out.append({"framework": entry.framework, "tactic": _mitre(entry.tactic), "technique": techniques})
    return out


def rule_document(meta: RuleMeta) -> dict[str, str]:
    """ECS ``rule``: ``rule.uuid`` (Elastic's id of a rule we name ourselves) only when the rule has one."""
    rule = {"id": meta.id, "uuid": meta.uuid} if meta.uuid is not None else {"id": meta.id}
    return {**rule, "name": meta.name, "version": meta.version, "reference": meta.reference}


def _quoted(events: Sequence[Event], mask_secrets: bool) -> list[orjson.Fragment]:
    return [orjson.Fragment(mask_document(e.raw) if mask_secrets else e.raw) for e in events]


def base_alert(
    meta: RuleMeta,
    *,
    host_id: str,
    host_name: str | None,
    execution: ProcessEvent,
    events: Sequence[Event],
    detected_ms: int,
    ruleset: str,
    case: str | None,
    explanation: dict[str, Any],
    mask_secrets: bool,
    severity: Severity | None = None,
    risk_score: int | None = None,
    related_alert_ids: Sequence[str] = (),
    suppressed_count: int = 0,
) -> dict[str, Any]:
    last_ms = max((e.timestamp_ms for e in events if e.timestamp_ms is not None), default=None)
    severity = severity or meta.severity
    risk_score = meta.risk_score if risk_score is None else risk_score
    host: dict[str, str] = {"id": host_id}
    if host_name is not None:
        host["name"] = host_name
    return {
        "@timestamp": format_rfc3339_ms(detected_ms),
        "event": {
            "kind": "alert",
            "id": alert_id(meta.id, host_id, execution),
            "severity": RISK_SCORES[severity],
            "risk_score": risk_score,
        },
        "rule": rule_document(meta),
        "host": host,
        "threat": threat_document(meta.threat),
        "detection": {
            "severity": severity,
            "case": case,
            "latency_ms": None if last_ms is None else detected_ms - last_ms,
            "ruleset": ruleset,
            "explanation": explanation,
            "related_alert_ids": list(related_alert_ids),
            "suppressed_count": suppressed_count,
            "replayed": any(e.replayed for e in events),
            "events": _quoted(events, mask_secrets),
        },
    }


def sequence_alert(
    meta: RuleMeta,
    match: Match,
    *,
    maxspan_ms: int,
    detected_ms: int,
    ruleset: str,
    mask_secrets: bool = True,
    related_alert_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """The alert for a completed "Potential Reverse Shell via Java" sequence."""
    execution = match.execution
    assert execution.host_id is not None and execution.parent_entity_id is not None
    explanation = {
        "join_key": {"host.id": execution.host_id, "process.entity_id": execution.parent_entity_id},
        "gap_ms": match.gap_ms,
        "maxspan_ms": maxspan_ms,
        "late": match.late,
        "clauses": {"network": list(match.connection_clauses), "process": list(match.execution_clauses)},
    }
    return base_alert(
        meta,
        host_id=execution.host_id,
        host_name=execution.host_name or match.connection.host_name,
        execution=execution,
        events=(match.connection, execution),
        detected_ms=detected_ms,
        ruleset=ruleset,
        case=None,
        explanation=explanation,
        mask_secrets=mask_secrets,
        related_alert_ids=related_alert_ids,
    )


def shell_alert(
    meta: RuleMeta,
    classification: Classification,
    event: ProcessEvent,
    *,
    detected_ms: int,
    ruleset: str,
    suppressed_count: int = 0,
    mask_secrets: bool = True,
) -> dict[str, Any]:
    """The alert for a shell (or HTTP/recon utility) spawned by Java, graded into its case."""
    explanation = {
        "case": classification.case,
        "why": list(classification.explanation),
        "commands": list(classification.commands),
    }
    return base_alert(
        meta,
        host_id=event.host_id or "",
        host_name=event.host_name,
        execution=event,
        events=(event,),
        detected_ms=detected_ms,
        ruleset=ruleset,
        case=classification.case,
        explanation=explanation,
        mask_secrets=mask_secrets,
        severity=classification.severity,
        risk_score=classification.risk_score,
        suppressed_count=suppressed_count,
    )
