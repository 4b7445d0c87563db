"""Records in, alert documents out: pre-filter -> decode -> correlate -> alert. No I/O, no clock.

The shells (``shellwatch detect``, the worker) feed raw records and pass the detection time in.
Outcomes are data: every record is counted as pre-filtered, undecodable (with its reason) or decoded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shellwatch.alerts import sequence_alert
from shellwatch.codec import DecodeError, decode_json_event
from shellwatch.correlate import Correlator, Match
from shellwatch.events import Event, Kind
from shellwatch.grouping import AlertGrouper
from shellwatch.prefilter import Prefilter
from shellwatch.rules.model import ReverseShellRule

__all__ = ["Pipeline", "PipelineConfig", "PipelineStats", "RecordOutcome"]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    allowed_lateness_ms: int = 5000
    prefilter_enabled: bool = True
    mask_secrets: bool = True
    max_hosts: int = 100_000
    max_pending_per_host: int = 1024
    max_held_per_host: int = 50_000
    group_period_ms: int = 3_600_000
    grouping_enabled: bool = True


@dataclass(slots=True)
class PipelineStats:
    records: int = 0
    prefiltered: int = 0
    decoded: int = 0
    undecodable: Counter[str] = field(default_factory=Counter)
    alerts: int = 0


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    alerts: list[dict[str, Any]]
    error: DecodeError | None = None
    prefiltered: bool = False


class Pipeline:
    def __init__(self, rule: ReverseShellRule, config: PipelineConfig) -> None:
        self.rule = rule
        self.config = config
        self.ruleset = rule.digest
        self.prefilter = Prefilter.from_patterns(
            [*rule.network.executables.patterns, *rule.process.parent_executables.patterns],
            enabled=config.prefilter_enabled,
        )
        self.correlator = Correlator(
            rule,
            allowed_lateness_ms=config.allowed_lateness_ms,
            max_hosts=config.max_hosts,
            max_pending_per_host=config.max_pending_per_host,
            max_held_per_host=config.max_held_per_host,
        )
        self.grouper = (
            AlertGrouper(config.group_period_ms, max_hosts=config.max_hosts) if config.grouping_enabled else None
        )
        self.stats = PipelineStats()

    def process(self, raw: bytes, detected_ms: int) -> RecordOutcome:
        self.stats.records += 1
        if not self.prefilter.accepts(raw):
            self.stats.prefiltered += 1
            return RecordOutcome([], prefiltered=True)
        decoded = decode_json_event(raw)
        if isinstance(decoded, DecodeError):
            self.stats.undecodable[decoded.reason] += 1
            return RecordOutcome([], error=decoded)
        self.stats.decoded += 1
        return RecordOutcome(self.observe(decoded.events, detected_ms))

    def observe(self, events: Iterable[Event], detected_ms: int) -> list[dict[str, Any]]:
        """Decoded events in; the alerts they complete out."""
        matches: list[Match] = []
        for event in events:
            matches.extend(self.correlator.observe(event))
        return self.alerts_for(matches, detected_ms)

    def stream_idle(self, kind: Kind, detected_ms: int, host_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        return self.alerts_for(self.correlator.stream_idle(kind, host_ids), detected_ms)

    def flush(self, detected_ms: int) -> list[dict[str, Any]]:
        return self.alerts_for(self.correlator.flush(), detected_ms)

    def alerts_for(self, matches: list[Match], detected_ms: int) -> list[dict[str, Any]]:
        self.stats.alerts += len(matches)
        return [
            sequence_alert(
                self.rule.meta,
                match,
                maxspan_ms=self.rule.maxspan_ms,
                detected_ms=detected_ms,
                ruleset=self.ruleset,
                mask_secrets=self.config.mask_secrets,
            )
            for match in matches
        ]
