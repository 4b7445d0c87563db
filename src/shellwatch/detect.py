"""``shellwatch detect``: run the detection core over NDJSON lines, alerts to stdout.

Each line is one record. Lines the pre-filter rejects are counted; a line that passes it but cannot
be decoded is reported on stderr as ``line N: reason`` and skipped. Both event kinds are read from
the one input, so each kind must be in time order per host, and the two may lag each other by up
to the allowed lateness, exactly as on the worker's two topics. End of input flushes everything held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice
from typing import IO, Any

from shellwatch.alerts import encode_alert
from shellwatch.pipeline import Pipeline
from shellwatch.terminal import printable

__all__ = ["run_detect"]


def _write_alerts(out: IO[bytes], alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        out.write(encode_alert(alert) + b"\n")
    if alerts:
        out.flush()


def run_detect(
    lines: Iterable[bytes],
    pipeline: Pipeline,
    out: IO[bytes],
    err: IO[str],
    clock_ms: Callable[[], int],
    *,
    batch_lines: int = 1,
) -> int:
    """Process ``lines``; returns the process exit status (0: the input was read to its end).

    ``batch_lines`` lines are pre-filtered together (a file: thousands; a live stream such as stdin: 1, so
    no line waits for later ones)."""
    number = 0
    source = iter(lines)
    while chunk := list(islice(source, batch_lines)):
        raws = [line.rstrip(b"\r\n") for line in chunk]
        for index in pipeline.prefilter_batch(raws):
            outcome = pipeline.process(raws[index], clock_ms())
            if outcome.error is not None:
                line_number = number + index + 1
                err.write(f"line {line_number}: {outcome.error.reason}: {printable(outcome.error.message)}\n")
            _write_alerts(out, outcome.alerts)
        number += len(raws)
    _write_alerts(out, pipeline.flush(clock_ms()))
    stats = pipeline.stats
    undecodable = sum(stats.undecodable.values())
    reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(stats.undecodable.items()))
    late = pipeline.correlator.stats.late
    err.write(
        f"shellwatch detect: {number} lines read, {stats.prefiltered} pre-filtered, "
        f"{undecodable} undecodable{f' ({reasons})' if reasons else ''}, {late} late, "
        f"{stats.alerts} alerts, {stats.suppressed} grouped into earlier alerts\n"
    )
    err.flush()
    return 0
