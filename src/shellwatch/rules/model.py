"""Typed rule models (frozen) and the shared vocabulary of severities and MITRE references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shellwatch.match.comparisons import IpAddress, IpRanges, WildcardSet, parse_ip

__all__ = [
    "RISK_SCORES",
    "MitreRef",
    "NetworkStage",
    "ProcessStage",
    "ReverseShellRule",
    "RuleMeta",
    "Severity",
    "Threat",
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
class Threat:
    tactic: MitreRef
    technique: MitreRef
    subtechnique: MitreRef | None


@dataclass(frozen=True, slots=True)
class RuleMeta:
    id: str
    name: str
    version: str
    severity: Severity
    risk_score: int
    reference: str
    threat: tuple[Threat, ...]


@dataclass(frozen=True, slots=True)
class NetworkStage:
    os_type: str
    actions: tuple[str, ...]
    executables: WildcardSet
    excluded_ips: tuple[IpAddress, ...]
    excluded_cidrs: IpRanges

    def excluded_ip(self, address: IpAddress) -> bool:
        return address in self.excluded_ips

    @staticmethod
    def parse_excluded_ip(text: str) -> IpAddress:
        address = parse_ip(text)
        if address is None:
            raise ValueError(f"not an IP address: {text!r}")
        return address


@dataclass(frozen=True, slots=True)
class ProcessStage:
    os_type: str
    action: str
    parent_executables: WildcardSet
    parent_args: WildcardSet
    names: tuple[str, ...]
    excluded_parent_args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReverseShellRule:
    """Elastic's "Potential Reverse Shell via Java" sequence: a network stage then a process stage."""

    meta: RuleMeta
    maxspan_ms: int
    query: str
    network: NetworkStage
    process: ProcessStage
    digest: str
