"""``shellwatch check-rules --rules PATH ...``: load EQL rule files and print one line per rule.

A loaded rule: ``ok <rule_id> "<name>" stages=<categories> keys=<join keys per stage> host-local=<yes|no>``,
then `` exceptions=<items> (<list names>)`` when exception lists are attached to it.
A refused one: ``error <file>:<line>:<column>: <construct>: <message>``. Then a summary line; exit status 1
when any rule failed, else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from shellwatch.rules.eql_rule import EqlRule, load_eql_rules
from shellwatch.tools.terminal import printable

__all__ = ["describe", "run_check_rules"]


def describe(rule: EqlRule) -> str:
    compiled = rule.compiled
    stages = []
    for stage in compiled.stages:
        name = stage.category or "any"
        stages.append(name if stage.runs == 1 else f"{name}*{stage.runs}")
    keys = " | ".join(",".join(stage.keys) or "-" for stage in compiled.stages)
    span = "" if compiled.maxspan_ms is None else f" maxspan_ms={compiled.maxspan_ms}"
    exceptions = ""
    if rule.exceptions:
        items = sum(len(lst.items) for lst in rule.exceptions)
        exceptions = f" exceptions={items} ({', '.join(printable(lst.name) for lst in rule.exceptions)})"
    return (
        f'ok {printable(rule.rule_id)} "{printable(rule.name)}" stages={",".join(stages)}'
        f" keys={keys if compiled.is_sequence else '-'}{span} host-local={'yes' if compiled.host_local else 'no'}"
        f"{exceptions}"
    )


def run_check_rules(paths: Sequence[Path], out: TextIO) -> int:
    loaded = load_eql_rules(paths)
    for rule in loaded.rules:
        print(describe(rule), file=out)
    for problem in loaded.problems:
        print(f"error {printable(str(problem))}", file=out)
    print(
        f"{len(loaded.rules)} rules loaded, {len(loaded.exception_lists)} exception lists, "
        f"{len(loaded.problems)} failed, {loaded.skipped} non-EQL files skipped",
        file=out,
    )
    return 1 if loaded.problems else 0
