"""The seed rule, "Potential Reverse Shell via Java" (DESIGN §1a): its file loaded, then checked for the shape
the built-in correlator (:mod:`shellwatch.core.correlate`) runs.

The file is in Elastic's detection-rules layout, read by :mod:`shellwatch.rules.eql_rule`; its query is the
rule's only definition. The correlator's alerts also need ``version`` and a reference URL (the first of
``references``). The query must be ``sequence by host.id with maxspan=...`` of two stages, each once:
``[network where ...] by process.entity_id`` then ``[process where ...] by process.parent.entity_id``, with
categories read from ``event.category``. Any other query is a load error naming the file (such rules run in
``shellwatch detect --rules``), and so is a file in the layout this one replaced (top-level ``id``,
``maxspan_ms`` and the hand-written ``[network]``/``[process]`` lists).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

from shellwatch.eql.compile import CATEGORY_FIELD, CompiledQuery
from shellwatch.errors import RuleError
from shellwatch.rules.eql_rule import EqlRule, RuleProblem, parse_eql_rule
from shellwatch.rules.loader import shipped_rule_path
from shellwatch.rules.model import ReverseShellRule, RuleMeta

__all__ = ["REVERSE_SHELL_RULE_FILE", "RuleError", "load_reverse_shell_rule"]

REVERSE_SHELL_RULE_FILE: Final = "potential_reverse_shell_via_java.toml"
SHAPE: Final = (
    "`sequence by host.id with maxspan=...` of [network where ...] by process.entity_id "
    "then [process where ...] by process.parent.entity_id, each stage once"
)
_STAGES: Final = (("network", ("host.id", "process.entity_id")), ("process", ("host.id", "process.parent.entity_id")))
_OLD_LAYOUT: Final = frozenset({"id", "maxspan_ms", "network", "process"})


def load_reverse_shell_rule(path: Path | None = None) -> ReverseShellRule:
    """Load and check the seed rule file (default: the shipped one); :class:`RuleError` names the file."""
    path = path or shipped_rule_path(REVERSE_SHELL_RULE_FILE)
    file = str(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError([f"{file}: cannot read: {exc}"]) from None
    rule = parse_eql_rule(source, file)
    if isinstance(rule, RuleProblem):
        raise RuleError([str(rule)])
    if rule is None:
        raise RuleError([_not_an_eql_rule(source, file)])
    problems = [f"{file}: rule.{key}: missing (alerts carry it)" for key in _missing_for_alerts(rule)]
    shape = _shape_problems(rule)
    if shape:
        problems.append(
            f"{file}: the built-in correlator cannot run this query: {'; '.join(shape)}. It runs {SHAPE}; "
            f"run this rule with `shellwatch detect --rules {file}` (the worker does not run such rules yet)"
        )
    if problems:
        raise RuleError(problems)
    compiled = rule.compiled
    assert rule.version is not None and compiled.maxspan_ms is not None  # checked above
    meta = RuleMeta(
        id=rule.rule_id,
        name=rule.name,
        version=rule.version,
        severity=rule.severity,
        risk_score=rule.risk_score,
        reference=rule.references[0],
        threat=rule.threat,
        uuid=rule.uuid,
    )
    network, process = compiled.stages
    return ReverseShellRule(meta, compiled.maxspan_ms, rule.query, compiled, network, process, rule.digest)


def _not_an_eql_rule(source: str, file: str) -> str:
    data = tomllib.loads(source)  # parse_eql_rule has read it: valid TOML
    if "rule" not in data and _OLD_LAYOUT & data.keys():
        return (
            f"{file}: this rule file has the layout shellwatch used before (top-level id, maxspan_ms and the "
            "[network]/[process] lists); the rule file is now Elastic's detection-rules layout, where the query is "
            "the rule's only definition: [metadata], then [rule] with rule_id, uuid, name, version, severity, "
            'risk_score, references, language = "eql", query and [[rule.threat]]. Start from the shipped '
            f"{REVERSE_SHELL_RULE_FILE} and carry any change you made over to its query (README: Upgrading)"
        )
    return f'{file}: not an EQL rule: expected a [rule] table with language = "eql" (detection-rules layout)'


def _missing_for_alerts(rule: EqlRule) -> list[str]:
    missing = [] if rule.version is not None else ["version"]
    return missing + ([] if rule.references else ["references"])


def _shape_problems(rule: EqlRule) -> list[str]:
    compiled: CompiledQuery = rule.compiled
    if not compiled.is_sequence:
        return ["it is not a sequence"]
    problems = []
    if compiled.sequence_keys != ("host.id",):
        problems.append(f"it is a sequence by {', '.join(compiled.sequence_keys) or 'no field'}, not by host.id")
    if compiled.maxspan_ms is None:
        problems.append("it has no maxspan")
    if rule.event_category_override not in (None, CATEGORY_FIELD):
        problems.append(f"it reads categories from {rule.event_category_override}, not {CATEGORY_FIELD}")
    if len(compiled.stages) != len(_STAGES):
        problems.append(f"it has {len(compiled.stages)} stages, not 2")
        return problems
    for number, (stage, (category, keys)) in enumerate(zip(compiled.stages, _STAGES, strict=True), start=1):
        if stage.category != category:
            problems.append(f"stage {number} is [{stage.category or 'any'} where ...], not [{category} where ...]")
        if stage.keys != keys or stage.optional_keys:
            joined = ", ".join(("?" if k in stage.optional_keys else "") + k for k in stage.keys)
            problems.append(f"stage {number} joins by {joined}, not by {', '.join(keys)}")
        if stage.runs != 1:
            problems.append(f"stage {number} runs {stage.runs} times, not once")
    return problems
