"""Typed rule models (frozen) and the shared vocabulary of severities and MITRE references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shellwatch.eql.compile import CompiledQuery, CompiledStage

__all__ = [
    "RISK_SCORES",
    "MitreRef",
    "ReverseShellRule",
    "RuleMeta",
    "Severity",
    "ThreatEntry",
]

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
RISK_SCORES: dict[Severity, int] = {"low": 21, "medium": 47, "high": 73, "critical": 99}


@dataclass(frozen=True, slots=True)
class MitreRef:
    id: str
    name: str
    reference: str


@dataclass(frozen=True, slots=True)
class ThreatEntry:
    """One ``[[rule.threat]]``: a tactic and its techniques, each with its subtechniques."""

    framework: str
    tactic: MitreRef
    techniques: tuple[tuple[MitreRef, tuple[MitreRef, ...]], ...]


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What an alert says about the rule that raised it; ``uuid`` is Elastic's id of a rule we name ourselves."""

    id: str
    name: str
    version: str
    severity: Severity
    risk_score: int
    reference: str
    threat: tuple[ThreatEntry, ...]
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class ReverseShellRule:
    """Elastic's "Potential Reverse Shell via Java" as the built-in correlator runs it: its query compiled, with
    the ``network`` stage (joined by ``process.entity_id``) and the ``process`` stage (by
    ``process.parent.entity_id``) of ``sequence by host.id with maxspan=...``."""

    meta: RuleMeta
    maxspan_ms: int
    query: str
    compiled: CompiledQuery
    network: CompiledStage
    process: CompiledStage
    digest: str
