"""What each vendored sequence rule costs, offline, on the workload's NDJSON: its pre-filter pass rate and CPU.

The rules are those ``bench/sequence_rules.txt`` lists: every sequence rule in ``tests/rules/elastic`` the
worker runs (loads, host-local). The list is committed, so a run states what it measured; it is checked here
against that criterion and a drift stops the run. For each rule: the share of records its own pre-filter
screen passes (a stage without a screen passes everything: the worker then turns the pre-filter off, and its
reason is reported), and the CPU seconds its engine (``RuleRunner`` with that rule alone) spends on the records
that pass: microseconds per event of the whole file and per passing record, and its alerts. Then the
pre-filter of the bundled rules alone and with every listed rule loaded, as the worker would build it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.core.pipeline import Pipeline, PipelineConfig, worker_inputs, worker_refusal
from shellwatch.core.rule_runner import RuleRunner, RunnerConfig
from shellwatch.eql.screen import query_screen
from shellwatch.rules.eql_rule import EqlRule, load_eql_rules
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule

LIST = Path(__file__).with_name("sequence_rules.txt")
VENDORED = Path(__file__).parents[1] / "tests" / "rules" / "elastic"


def listed_rules() -> list[EqlRule]:
    """The listed rules, loaded; raises ``SystemExit`` when the list and its criterion disagree."""
    names = [line.strip() for line in LIST.read_text().splitlines() if line.strip() and not line.startswith("#")]
    loaded = load_eql_rules([VENDORED])
    if loaded.problems:
        raise SystemExit(f"{VENDORED}: {loaded.problems[0]}")
    runnable = {Path(r.file).name: r for r in loaded.rules if r.compiled.is_sequence and worker_refusal(r) is None}
    if sorted(runnable) != sorted(names):
        raise SystemExit(
            f"{LIST} disagrees with its criterion: missing {sorted(set(runnable) - set(names))}, "
            f"not runnable {sorted(set(names) - set(runnable))}"
        )
    return [runnable[name] for name in names]


def rule_costs(ndjson: Path, rules: list[EqlRule], limit: int = 200_000) -> dict[str, Any]:
    """The figures on the file's first ``limit`` records (the workload is uniform over time)."""
    lines: list[bytes] = []
    with ndjson.open("rb") as handle:
        for line in handle:
            if line.strip():
                lines.append(line.rstrip(b"\n"))
                if len(lines) >= limit:
                    break
    per_rule: list[dict[str, Any]] = []
    for rule in rules:
        screen = query_screen(rule.compiled.query)
        byte_screen = ByteScreen.from_patterns(screen.patterns) if screen.patterns else ByteScreen(None)
        kept = [lines[i] for i in byte_screen.accepted(lines)]
        runner = RuleRunner([rule], RunnerConfig())
        started = time.process_time()
        alerts = sum(len(runner.process(raw, 0).alerts) for raw in kept) + len(runner.flush(0))
        cpu_s = time.process_time() - started
        per_rule.append(
            {
                "rule_id": rule.rule_id,
                "file": Path(rule.file).name,
                "name": rule.name,
                "inputs": sorted({s.category or "any" for s in rule.compiled.stages}),
                "pass_rate": round(len(kept) / len(lines), 4),
                "screen_off_reason": None if screen.patterns else screen.reason,
                "cpu_s": round(cpu_s, 3),
                "us_per_event": round(cpu_s / len(lines) * 1e6, 2),
                "us_per_passing_record": round(cpu_s / len(kept) * 1e6, 1) if kept else None,
                "alerts": alerts,
            }
        )
    bundled = Pipeline(load_reverse_shell_rule(), PipelineConfig(), load_shell_rule())
    every = Pipeline(load_reverse_shell_rule(), PipelineConfig(), load_shell_rule(), rules=rules)
    return {
        "records": len(lines),
        "rules": per_rule,
        "inputs_with_every_rule": list(worker_inputs(rules)),
        "prefilter_pass_rate_bundled": round(len(bundled.prefilter.accepted(lines)) / len(lines), 4),
        "prefilter_pass_rate_every_rule": round(len(every.prefilter.accepted(lines)) / len(lines), 4),
        "prefilter_off_reason_every_rule": every.prefilter_off_reason,
    }


def markdown(costs: dict[str, Any]) -> list[str]:
    out = [
        f"On the workload's first {costs['records']:,} records. Pre-filter pass rate: bundled rules "
        f"{costs['prefilter_pass_rate_bundled']:.2%}; with every listed "
        f"sequence rule ({len(costs['rules'])}, `bench/sequence_rules.txt`) "
        f"{costs['prefilter_pass_rate_every_rule']:.2%}"
        + (f" (off: {costs['prefilter_off_reason_every_rule']})" if costs["prefilter_off_reason_every_rule"] else "")
        + f"; inputs then read: {', '.join(costs['inputs_with_every_rule'])}.",
        "",
        "| rule | inputs | pass rate | CPU s | µs/event | µs/passing record | alerts |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(costs["rules"], key=lambda r: -r["cpu_s"]):
        out.append(
            f"| {r['name']} (`{r['rule_id'][:8]}`) | {', '.join(r['inputs'])} | {r['pass_rate']:.2%} | {r['cpu_s']} "
            f"| {r['us_per_event']} | {r['us_per_passing_record']} | {r['alerts']} |"
        )
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(rule_costs(Path(sys.argv[1]), listed_rules()), indent=1))
