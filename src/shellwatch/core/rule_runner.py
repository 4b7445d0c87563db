"""Any set of EQL rule files over one stream of records: decode -> each rule's stages -> order -> engine -> alerts.

A record is decoded once (:mod:`shellwatch.core.rule_events`), and flattened once under every rule's fields;
each rule tests its stages on that. An event that would fill a stage but matches one of the rule's exception items
(:mod:`shellwatch.rules.exceptions`) is left out of that rule, as Elasticsearch leaves it out of the rule's
search, and counted per rule and item. A non-sequence rule (``process where ...``) alerts on every matching
event at once. A sequence rule's candidates go through its :class:`~shellwatch.core.event_order.EventOrder`
(per host when its join is host-local, else one scope) into its
:class:`~shellwatch.core.sequence_engine.SequenceEngine`; its state is evicted by event time as the order
advances. :meth:`RuleRunner.flush` ends the input. No I/O, no clock: the detection time is passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shellwatch.core.event_order import EventOrder
from shellwatch.core.rule_alerts import rule_alert
from shellwatch.core.rule_candidates import RuleCandidates
from shellwatch.core.rule_events import RuleEvent, RuleEventError, decode_rule_event, rules_fields
from shellwatch.core.sequence_engine import Candidate, SequenceEngine, SequenceMatch
from shellwatch.rules.eql_rule import EqlRule

__all__ = ["RuleRunner", "RunnerConfig", "RunnerOutcome", "RunnerStats"]


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    allowed_lateness_ms: int = 5000
    mask_secrets: bool = True
    max_keys_per_rule: int = 100_000
    max_held_per_scope: int = 50_000


@dataclass(slots=True)
class RunnerStats:
    records: int = 0
    decoded: int = 0
    undecodable: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    alerts_per_rule: Counter[str] = field(default_factory=Counter)
    excepted: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule id, exception item) -> events


@dataclass(frozen=True, slots=True)
class RunnerOutcome:
    alerts: list[dict[str, Any]]
    error: RuleEventError | None = None


class _RuleState:
    def __init__(self, rule: EqlRule, config: RunnerConfig, stats: RunnerStats) -> None:
        self.rule = rule
        self.candidates = RuleCandidates(rule, stats.excepted)
        compiled = rule.compiled
        self.sequence = compiled.is_sequence
        self.host_local = compiled.host_local
        self.engine = SequenceEngine(compiled, max_keys=config.max_keys_per_rule)
        self.order = EventOrder(config.allowed_lateness_ms, max_held=config.max_held_per_scope)
        self.evicted_at_ms: dict[Hashable, int] = {}  # per scope: the event time of its last eviction

    def candidate(self, event: RuleEvent) -> Candidate | None:
        return self.candidates.candidate(event)

    def scope(self, candidate: Candidate) -> Hashable:
        event: RuleEvent = candidate.payload
        return event.host_id if self.host_local else None

    def apply(self, released: Sequence[Candidate]) -> list[SequenceMatch]:
        matches: list[SequenceMatch] = []
        maxspan_ms = self.engine.maxspan_ms
        for candidate in released:
            scope = self.scope(candidate)
            matches.extend(self.engine.apply(candidate, scope))
            if maxspan_ms is not None and not candidate.late:
                last = self.evicted_at_ms.get(scope)
                if last is None:
                    self.evicted_at_ms[scope] = candidate.timestamp_ms
                elif candidate.timestamp_ms - last >= maxspan_ms:  # amortized: a sweep per maxspan of its time
                    self.engine.evict(candidate.timestamp_ms - self.order.allowed_lateness_ms, scope)
                    self.evicted_at_ms[scope] = candidate.timestamp_ms
        return matches


class RuleRunner:
    def __init__(self, rules: Sequence[EqlRule], config: RunnerConfig | None = None) -> None:
        self.config = config or RunnerConfig()
        self.stats = RunnerStats()
        self._states = [_RuleState(rule, self.config, self.stats) for rule in rules]
        self._fields = rules_fields(rules)  # one flatten per record for every rule
        self._seq = 0

    @property
    def late(self) -> int:
        """Candidates that arrived after their scope had released their millisecond (applied best effort)."""
        return sum(state.order.late for state in self._states)

    def process(self, raw: bytes, detected_ms: int) -> RunnerOutcome:
        self.stats.records += 1
        self._seq += 1
        event = decode_rule_event(raw, self._seq, self._fields)
        if isinstance(event, RuleEventError):
            self.stats.undecodable[event.reason] += 1
            return RunnerOutcome([], event)
        self.stats.decoded += 1
        alerts: list[dict[str, Any]] = []
        for state in self._states:
            candidate = state.candidate(event)
            if candidate is None:
                continue
            if not state.sequence:
                matches = state.engine.apply(candidate)
            else:
                matches = state.apply(state.order.push(state.scope(candidate), candidate))
            alerts.extend(self._alerts(state, matches, detected_ms))
        return RunnerOutcome(alerts)

    def flush(self, detected_ms: int) -> list[dict[str, Any]]:
        """End of input: release every held event and apply it."""
        alerts: list[dict[str, Any]] = []
        for state in self._states:
            if state.sequence:
                alerts.extend(self._alerts(state, state.apply(state.order.flush()), detected_ms))
        return alerts

    def _alerts(self, state: _RuleState, matches: list[SequenceMatch], detected_ms: int) -> list[dict[str, Any]]:
        alerts = [
            rule_alert(state.rule, m, detected_ms=detected_ms, mask_secrets=self.config.mask_secrets) for m in matches
        ]
        self.stats.alerts += len(alerts)
        if alerts:
            self.stats.alerts_per_rule[state.rule.rule_id] += len(alerts)
        return alerts
