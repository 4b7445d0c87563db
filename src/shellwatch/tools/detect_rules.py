"""``shellwatch detect --rules PATH ... FILE``: exactly the given EQL rule files over NDJSON lines, alerts to stdout.

Each line is an ECS document (or a ``shellwatch record`` capture line, whose value is used). Every line is
decoded (no pre-filter: the rules decide); a line that cannot be is reported on stderr as ``line N: reason``.
The input's events may be out of order per host by up to the allowed lateness; end of input flushes
everything held. The summary line on stderr counts lines, undecodable ones, late events and alerts per rule;
events left out by the rules' exception lists are counted on a line per rule and item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO

from shellwatch.core.rule_runner import RuleRunner
from shellwatch.formats.alert_codec import encode_alert
from shellwatch.kafka.clock import WallClockMs
from shellwatch.tools.detect import record_value
from shellwatch.tools.terminal import printable

__all__ = ["run_detect_rules"]


def run_detect_rules(
    lines: Iterable[bytes], runner: RuleRunner, out: IO[bytes], err: IO[str], clock_ms: WallClockMs
) -> int:
    """Process ``lines``; returns the exit status (0: the input was read to its end)."""
    number = 0
    for line in lines:
        number += 1
        raw = record_value(line.rstrip(b"\r\n"), number, err)
        if not raw.strip():
            continue
        outcome = runner.process(raw, clock_ms())
        if outcome.error is not None:
            err.write(f"line {number}: {outcome.error.reason}: {printable(outcome.error.message)}\n")
        for alert in outcome.alerts:
            out.write(encode_alert(alert) + b"\n")
        if outcome.alerts:
            out.flush()
    for alert in runner.flush(clock_ms()):
        out.write(encode_alert(alert) + b"\n")
    out.flush()
    stats = runner.stats
    undecodable = sum(stats.undecodable.values())
    per_rule = ", ".join(f"{printable(rule_id)}={count}" for rule_id, count in sorted(stats.alerts_per_rule.items()))
    err.write(
        f"shellwatch detect: {number} lines read, {undecodable} undecodable, {runner.late} late, "
        f"{stats.alerts} alerts{f' ({per_rule})' if per_rule else ''}\n"
    )
    for (rule_id, item), count in sorted(stats.excepted.items()):
        err.write(f"shellwatch detect: {count} events excepted from {printable(rule_id)} by {printable(item)!r}\n")
    err.flush()
    return 0
