"""Which stages of one EQL rule an event fills, after the rule's exceptions: the step every runner shares.

An event that would fill a stage but matches one of the rule's exception items
(:mod:`shellwatch.rules.exceptions`) is left out of the rule (Elasticsearch leaves it out of the rule's
search), and counted per (rule id, item). Pure code.
"""

from __future__ import annotations

from collections import Counter

from shellwatch.core.rule_events import RuleEvent
from shellwatch.core.sequence_engine import Candidate
from shellwatch.rules.eql_rule import EqlRule
from shellwatch.rules.exceptions import RuleExceptions

__all__ = ["RuleCandidates"]


class RuleCandidates:
    def __init__(self, rule: EqlRule, excepted: Counter[tuple[str, str]]) -> None:
        self.rule = rule
        self.exceptions = RuleExceptions(rule.exceptions)
        self.excepted = excepted  # shared with the runner's stats

    def candidate(self, event: RuleEvent, source: str | None = None) -> Candidate | None:
        """The event as a candidate of this rule (``source``: its input, default the event's own), or ``None``."""
        compiled = self.rule.compiled
        flat = event.flat
        stages = tuple(i for i, stage in enumerate(compiled.stages) if stage.predicate(flat))
        if not stages:
            return None
        if self.exceptions:
            excepted_by = self.exceptions.matching(event.document)
            if excepted_by is not None:
                self.excepted[self.rule.rule_id, excepted_by] += 1
                return None
        return Candidate(event.seq, event.timestamp_ms, source or event.source, flat, stages, event)
