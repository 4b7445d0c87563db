"""``shellwatch detect``: run the detection core over NDJSON lines, alerts to stdout.

Each line is one record: an ECS document, or a ``shellwatch record`` capture line (its value is
used). Lines the pre-filter rejects are counted; a line that passes it but cannot
be decoded is reported on stderr as ``line N: reason`` and skipped. Both event kinds are read from
the one input, so each kind must be in time order per host, and the two may lag each other by up
to the allowed lateness, exactly as on the worker's two topics. End of input flushes everything held.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from shellwatch.core.pipeline import Pipeline
from shellwatch.formats.alert_codec import encode_alert
from shellwatch.formats.capture import CaptureError, may_hold_captures, parse_capture_line
from shellwatch.kafka.clock import WallClockMs
from shellwatch.tools.expectations import (
    Expectation,
    Observed,
    compare,
    expectation_line,
    expectation_of_alert,
    format_diff,
    load_expectations,
)
from shellwatch.tools.terminal import printable

__all__ = ["load_expected", "report_detected", "run_detect"]


def _write_alerts(out: IO[bytes], alerts: list[dict[str, Any]]) -> None:
    for alert in alerts:
        out.write(encode_alert(alert) + b"\n")
    if alerts:
        out.flush()


def record_value(raw: bytes, number: int, err: IO[str]) -> bytes:
    """The record a line holds: the line itself, or a capture line's value (b"" if it has none or is broken)."""
    try:
        captured = parse_capture_line(raw)
    except CaptureError as exc:
        err.write(f"line {number}: bad capture record: {printable(str(exc))}\n")
        return b""
    if captured is None:
        return raw
    return captured.value or b""


def run_detect(
    lines: Iterable[bytes],
    pipeline: Pipeline,
    out: IO[bytes],
    err: IO[str],
    clock_ms: WallClockMs,
    *,
    batch_lines: int = 1,
) -> int:
    """Process ``lines``; returns the process exit status (0: the input was read to its end).

    ``batch_lines`` lines are pre-filtered together (a file: thousands; a live stream such as stdin: 1, so
    no line waits for later ones)."""
    if pipeline.prefilter_off_reason is not None:
        err.write(f"shellwatch detect: pre-filter off: {pipeline.prefilter_off_reason}\n")
    number = 0
    source = iter(lines)
    while chunk := list(islice(source, batch_lines)):
        if may_hold_captures(chunk):
            raws = [record_value(line.rstrip(b"\r\n"), number + offset + 1, err) for offset, line in enumerate(chunk)]
        else:  # plain lines are screened as they are (a line end holds no needle) and stripped once kept
            raws = chunk
        for index in pipeline.prefilter_batch(raws):
            outcome = pipeline.process(raws[index].rstrip(b"\r\n"), clock_ms(), screened=True)
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


def load_expected(path: Path | None) -> list[Expectation] | None:
    """The expectations of ``--expect`` (``None`` without it)."""
    if path is None:
        return None
    with path.open("rb") as handle:
        return load_expectations(handle, str(path))


def report_detected(alert_lines: bytes, expected: list[Expectation] | None, out: IO[str]) -> int:
    """``--expectations``: print each alert as an expectation line; ``--expect``: print the diff (1 on any)."""
    alerts = [orjson.loads(line) for line in alert_lines.splitlines() if line.strip()]
    observed = [
        Observed(expectation_of_alert(alert), str(alert["event"]["id"]), 0, bool(alert["detection"].get("replayed")))
        for alert in alerts
    ]
    if expected is None:
        for item in observed:
            out.write(expectation_line(item.expectation).decode() + "\n")
        return 0
    diff = compare(expected, observed, require_replayed=False)
    out.write("\n".join(format_diff(diff, {})) + "\n")
    return 0 if diff.ok else 1
