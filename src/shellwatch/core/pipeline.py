"""Records in, alert documents out: pre-filter -> decode -> correlate -> alert. No I/O, no clock.

The shells (``shellwatch detect``, the worker) feed raw records and pass the detection time in.
Outcomes are data: every record is counted as pre-filtered, undecodable (with its reason) or decoded.

The operator's EQL rules (``SHELLWATCH_RULES``) run beside the bundled ones, per host over the network and
process inputs and one input per other event category their stages name (:func:`worker_inputs`; a ``file where``
stage adds ``file``), see :mod:`shellwatch.core.host_rules`; :func:`worker_refusal` says why a rule cannot run so.

The pre-filter's patterns come from the loaded rules: one required conjunct per stage of the sequence rule's
query and of every operator rule's (:mod:`shellwatch.eql.screen`), and the shell rule's Java lists. When one
of them yields none, the pre-filter accepts every record and :attr:`Pipeline.prefilter_off_reason` says why
(naming the rule), for the shell to log.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from shellwatch.core.alerts import exec_identity, sequence_alert, shell_alert
from shellwatch.core.byte_screen import ByteScreen
from shellwatch.core.classify import classify, evaluate
from shellwatch.core.correlate import Correlator, Match
from shellwatch.core.grouping import AlertGrouper
from shellwatch.core.host_rules import HostRules, RuleMatch, not_host_local
from shellwatch.core.rule_alerts import rule_alert
from shellwatch.core.stages import holds
from shellwatch.ecs.events import CategoryEvent, Event, Kind, NetworkEvent, ProcessEvent
from shellwatch.eql.screen import query_screen
from shellwatch.formats.event_codec import (
    Decoded,
    DecodeError,
    Routing,
    SchemaResolver,
    decode_record,
    route_record,
)
from shellwatch.rules.eql_rule import EqlRule
from shellwatch.rules.loader import digest_of
from shellwatch.rules.model import ReverseShellRule
from shellwatch.rules.shell_rule import ShellRule

__all__ = [
    "INPUTS",
    "Pipeline",
    "PipelineConfig",
    "PipelineStats",
    "RecordOutcome",
    "worker_inputs",
    "worker_refusal",
]

INPUTS: tuple[Kind, ...] = ("network", "process")  # the inputs the bundled rules read, by the events' kind


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
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    alerts: list[dict[str, Any]]
    error: DecodeError | None = None
    prefiltered: bool = False


class _ExecKey(NamedTuple):
    """One exec across hosts: its ``host.id`` and its :func:`~shellwatch.core.alerts.exec_identity`."""

    host_id: str
    exec_identity: str


_KNOWN_BAD = "java_shell_execution_known_bad"
_REMEMBERED_SHELL_ALERTS = 100_000
_Kept = TypeVar("_Kept")  # what a screen keeps of a batch: indices, or spans of lines


def worker_refusal(rule: EqlRule, bundled_ids: Iterable[str] = ()) -> str | None:
    """Why an operator's rule cannot run beside the bundled ones (``None``: it can)."""
    if rule.rule_id in set(bundled_ids):
        return f"rule {rule.rule_id} ({rule.file}) has the rule_id of a bundled rule, which already runs"
    return not_host_local(rule)


def worker_inputs(rules: Iterable[EqlRule]) -> tuple[str, ...]:
    """The inputs (event categories) the worker reads for the bundled rules and ``rules``: network and process,
    then every other category a stage of ``rules`` names, sorted (an ``any where`` stage reads those there are)."""
    named = {stage.category for rule in rules for stage in rule.compiled.stages}
    return (*INPUTS, *sorted(c for c in named if c is not None and c not in INPUTS))


def _prefilter(
    rule: ReverseShellRule, shell_rule: ShellRule | None, rules: Sequence[EqlRule], *, enabled: bool
) -> tuple[ByteScreen, str | None]:
    """The pre-filter of the loaded rules, and why it accepts every record when it does though enabled."""
    if not enabled:
        return ByteScreen(None), None
    patterns: list[str] = []
    for rule_id, query in [(rule.meta.id, rule.compiled.query), *((r.rule_id, r.compiled.query) for r in rules)]:
        screen = query_screen(query)
        if screen.patterns is None:
            return ByteScreen(None), f"rule {rule_id}: {screen.reason}"
        patterns.extend(screen.patterns)
    shell_patterns = shell_rule.prefilter_patterns() if shell_rule is not None else ()
    prefilter = ByteScreen.from_patterns([*patterns, *shell_patterns])
    if prefilter.needles is None:
        assert shell_rule is not None  # every pattern of a query screen has a needle
        reason = "a Java parent name or executable pattern has no text a record must spell"
        return prefilter, f"rule {shell_rule.meta.id}: {reason}, so the pre-filter accepts every record"
    return prefilter, None


class Pipeline:
    """Both detections over one stream of records: the sequence rule and (when given) the shell rule."""

    def __init__(
        self,
        rule: ReverseShellRule,
        config: PipelineConfig,
        shell_rule: ShellRule | None = None,
        schema_resolver: SchemaResolver | None = None,
        rules: Sequence[EqlRule] = (),
    ) -> None:
        """``rules``: the operator's EQL rules, each one :func:`worker_refusal` accepts (else ``ValueError``)."""
        bundled = [rule.meta.id] + ([shell_rule.meta.id] if shell_rule is not None else [])
        refused = [reason for reason in (worker_refusal(r, bundled) for r in rules) if reason is not None]
        if refused:
            raise ValueError("; ".join(refused))
        self.rule = rule
        self.schema_resolver = schema_resolver
        self.shell_rule = shell_rule
        self.rules = tuple(rules)
        self.inputs = worker_inputs(self.rules)
        self._other_inputs = frozenset(self.inputs) - frozenset(INPUTS)  # decoded as CategoryEvents
        self.config = config
        digests = {"sequence": rule.digest, "shell": shell_rule.digest if shell_rule else None}
        if rules:  # without them the ruleset digest is what it was before they could be loaded
            digests["rules"] = digest_of({r.rule_id: [r.digest, *(x.digest for x in r.exceptions)] for r in rules})
        self.ruleset = digest_of(digests)
        self.prefilter, self.prefilter_off_reason = _prefilter(
            rule, shell_rule, self.rules, enabled=config.prefilter_enabled
        )
        # id of the shell alert actually emitted for each exec
        self._shell_alert_ids: OrderedDict[_ExecKey, str] = OrderedDict()
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
        self.host_rules = (
            HostRules(
                self.rules,
                self.inputs,
                allowed_lateness_ms=config.allowed_lateness_ms,
                max_hosts=config.max_hosts,
                max_held_per_host=config.max_held_per_host,
            )
            if self.rules
            else None
        )
        self.stats = PipelineStats()

    def process(self, raw: bytes, detected_ms: int, *, screened: bool = False) -> RecordOutcome:
        """One record through the pre-filter, the decode and the rules. ``screened``: :meth:`prefilter_batch`
        passed it already (it is not screened twice)."""
        self.stats.records += 1
        if not screened and not self.prefilter.accepts(raw):
            self.stats.prefiltered += 1
            return RecordOutcome([], prefiltered=True)
        decoded = self.decode(raw)
        if isinstance(decoded, DecodeError):
            self.stats.undecodable[decoded.reason] += 1
            return RecordOutcome([], error=decoded)
        self.stats.decoded += 1
        return RecordOutcome(
            self.observe(decoded.events, detected_ms) + self.observe_rules(decoded.events, detected_ms)
        )

    def prefilter_batch(self, raws: Sequence[bytes]) -> list[int]:
        """Indices of the records of *raws* that pass the pre-filter, for :meth:`process`; the others are
        counted as :meth:`process` counts them. One batched check instead of a call per record."""
        return self._counted(self.prefilter.accepted(raws), len(raws))

    def prefilter_lines(self, block: bytes, lines: int) -> list[tuple[int, int]]:
        """:meth:`prefilter_batch` for the ``lines`` lines of ``block`` (each ended by a line feed, but for the
        input's last line): the (start, end) of each line that passes, its line feed excluded."""
        return self._counted(self.prefilter.accepted_lines(block), lines)

    def _counted(self, kept: list[_Kept], screened: int) -> list[_Kept]:
        """``kept`` of ``screened`` records, the others counted as :meth:`process` counts a record it screens out
        (the kept ones are counted when processed)."""
        rejected = screened - len(kept)
        self.stats.records += rejected
        self.stats.prefiltered += rejected
        return kept

    def decode(self, raw: bytes) -> Decoded | DecodeError:
        """One record to events (JSON, Avro single-object, or registry-framed Avro when a registry is set)."""
        return decode_record(
            raw, registry=self.schema_resolver, fields=self.correlator.fields, categories=self._other_inputs
        )

    def decode_for_routing(self, raw: bytes) -> Routing | DecodeError:
        """What :meth:`decode` would route the record by (its events' kinds, host and time): the worker's pre-filter
        stage, which forwards the bytes, not the events. It fails exactly when :meth:`decode` does.

        With only the bundled rules loaded (and the pre-filter on) the record is decoded and its events checked
        against them: ``relevant`` is False when none is a connection the sequence rule's first stage holds, an exec
        its second stage holds, or an exec the shell rule classifies (allowlisted or not), so the stage drops the
        records a byte screen cannot tell apart (a Java process's connections to private addresses, its non-shell
        children). Those events change no rule's outcome; the correlator's per-host progress comes, as for every
        record the byte screen drops, from the events it does see and from the stage's progress markers. An
        operator's rules may read any event, so with them loaded every record is forwarded.
        """
        if self.host_rules is not None or self.prefilter.needles is None:
            return route_record(raw, registry=self.schema_resolver, categories=self._other_inputs)
        decoded = self.decode(raw)
        if isinstance(decoded, DecodeError):
            return decoded
        if not decoded.events:  # a document of no input: routed by what the codec reads of it
            return route_record(raw, registry=self.schema_resolver, categories=self._other_inputs)
        first = decoded.events[0]
        kinds = tuple(event.kind for event in decoded.events)
        return Routing(kinds, first.host_id, first.timestamp_ms, relevant=any(map(self._may_match, decoded.events)))

    def _may_match(self, event: Event) -> bool:
        """Whether a bundled rule can match ``event``: a stage of the sequence rule holds it, or the shell rule
        classifies it (allowlisted or not: the stage counts what the allowlist silences)."""
        if isinstance(event, NetworkEvent):
            return holds(self.rule.network, event)
        if isinstance(event, ProcessEvent):
            if holds(self.rule.process, event):
                return True
            return self.shell_rule is not None and evaluate(self.shell_rule, event) is not None
        return True  # another input's event: only an operator's rule reads one (none is loaded here)

    def observe(self, events: Iterable[Event], detected_ms: int) -> list[dict[str, Any]]:
        """Decoded events in; the alerts they raise or complete out."""
        alerts: list[dict[str, Any]] = []
        matches: list[Match] = []
        for event in events:
            if isinstance(event, CategoryEvent):  # only the operator's rules read other categories
                continue
            if isinstance(event, ProcessEvent) and self.shell_rule is not None:
                alerts.extend(self._classify(self.shell_rule, event, detected_ms))
            matches.extend(self.correlator.observe(event))
        return alerts + self.alerts_for(matches, detected_ms)

    def observe_rules(self, events: Sequence[Event], detected_ms: int) -> list[dict[str, Any]]:
        """The operator's rules on one record's events (decoded from one document: observed once, under the
        first event's kind); the alerts they complete."""
        if self.host_rules is None or not events:
            return []
        outcome = self.host_rules.observe(events[0].raw, events[0].kind, replayed=events[0].replayed)
        return self.rule_alerts(outcome.matches, detected_ms)

    def rule_alerts(self, matches: list[RuleMatch], detected_ms: int) -> list[dict[str, Any]]:
        self.stats.alerts += len(matches)
        mask = self.config.mask_secrets
        return [rule_alert(m.rule, m.match, detected_ms=detected_ms, mask_secrets=mask) for m in matches]

    def _classify(self, shell_rule: ShellRule, event: ProcessEvent, detected_ms: int) -> list[dict[str, Any]]:
        classification = classify(shell_rule, event)
        if classification is None:
            return []
        suppressed = 0
        grouped = self.grouper is not None and classification.case != _KNOWN_BAD
        if grouped and self.grouper is not None and event.host_id is not None and event.timestamp_ms is not None:
            command = event.command_lines[0] if event.command_lines else " ".join(event.args)
            key = (event.parent_entity_id or "", command, classification.case)
            reported = self.grouper.admit(event.host_id, key, event.timestamp_ms)
            if reported is None:
                self.stats.suppressed += 1
                return []
            suppressed = reported
        alert = shell_alert(
            shell_rule.meta,
            classification,
            event,
            detected_ms=detected_ms,
            ruleset=self.ruleset,
            suppressed_count=suppressed,
            mask_secrets=self.config.mask_secrets,
        )
        remembered = self._shell_alert_ids
        remembered[_ExecKey(event.host_id or "", exec_identity(event))] = alert["event"]["id"]
        if len(remembered) > _REMEMBERED_SHELL_ALERTS:
            remembered.popitem(last=False)
        self.stats.alerts += 1
        return [alert]

    def bundled_idle(
        self, kinds: Sequence[str], detected_ms: int, host_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Inputs ``kinds`` are caught up (a progress marker): the bundled rules' held events waiting only for them
        are released (for ``host_ids``, default every holding host)."""
        alerts: list[dict[str, Any]] = []
        for kind in INPUTS:
            if kind in kinds:
                alerts.extend(self.alerts_for(self.correlator.stream_idle(kind, host_ids), detected_ms))
        return alerts

    def rules_idle(
        self, kinds: Sequence[str], detected_ms: int, host_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """:meth:`bundled_idle` for the operator's rules."""
        if self.host_rules is None or not kinds:
            return []
        return self.rule_alerts(self.host_rules.stream_idle(kinds, host_ids), detected_ms)

    def flush(self, detected_ms: int) -> list[dict[str, Any]]:
        alerts = self.alerts_for(self.correlator.flush(), detected_ms)
        if self.host_rules is not None:
            alerts.extend(self.rule_alerts(self.host_rules.flush(), detected_ms))
        return alerts

    def alerts_for(self, matches: list[Match], detected_ms: int) -> list[dict[str, Any]]:
        self.stats.alerts += len(matches)
        alerts = []
        for match in matches:
            execution = match.execution
            related = self._shell_alert_ids.get(_ExecKey(execution.host_id or "", exec_identity(execution)))
            alerts.append(
                sequence_alert(
                    self.rule.meta,
                    match,
                    maxspan_ms=self.rule.maxspan_ms,
                    detected_ms=detected_ms,
                    ruleset=self.ruleset,
                    mask_secrets=self.config.mask_secrets,
                    related_alert_ids=[related] if related is not None else [],
                )
            )
        return alerts
