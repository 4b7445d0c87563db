"""``shellwatch detect``: run the detection core over NDJSON lines, alerts to stdout.

Each line is one record: an ECS document, or a ``shellwatch record`` capture line (its value is
used). Lines the pre-filter rejects are counted; a line that passes it but cannot
be decoded is reported on stderr as ``line N: reason`` and skipped. Both event kinds are read from
the one input, so each kind must be in time order per host, and the two may lag each other by up
to the allowed lateness, exactly as on the worker's two topics. End of input flushes everything held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any, NamedTuple

import orjson
from ahocorasick_rs import BytesAhoCorasick

from shellwatch.core.pipeline import Pipeline
from shellwatch.formats.alert_codec import encode_alert
from shellwatch.formats.capture import CaptureError, block_may_hold_captures, may_hold_captures, parse_capture_line
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

__all__ = ["FILE_BLOCK_BYTES", "load_expected", "report_detected", "run_detect", "run_detect_file"]

# a file is read in blocks of this size, screened whole: large enough to make a Python step per block negligible,
# small enough that the block and its lower-cased copy stay in cache
FILE_BLOCK_BYTES = 64 * 1024
# a block's lines are counted by the line feeds this finds (memchr in Rust; bytes.count is a plain byte loop)
_LINE_FEEDS = BytesAhoCorasick([b"\n"])


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


class _Read:
    """The number of lines read so far (the last line of a file may lack its line end)."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines = 0


class _Line(NamedTuple):
    """Where a kept line is: its number is counted only when an error is reported on it."""

    text: bytes  # the block it was screened in (b"" when it was read on its own)
    start: int  # where it starts in ``text``
    before: int  # the lines before ``text``

    def number(self) -> int:
        return self.before + self.text.count(b"\n", 0, self.start) + 1


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

    ``batch_lines`` lines are pre-filtered together (a live stream such as stdin: 1, so no line waits for later
    ones; a file goes through :func:`run_detect_file`)."""
    read = _Read()
    return _detect(
        _kept_lines(lines, pipeline, err, batch_lines, read), read, pipeline, out=out, err=err, clock_ms=clock_ms
    )


def run_detect_file(
    handle: IO[bytes],
    pipeline: Pipeline,
    out: IO[bytes],
    err: IO[str],
    clock_ms: WallClockMs,
    *,
    block_bytes: int = FILE_BLOCK_BYTES,
) -> int:
    """As :func:`run_detect` on the lines of ``handle``, read in blocks of ``block_bytes``: a block of plain lines
    is screened whole, and only the lines it lets through are cut out of it (no object per line)."""
    read = _Read()
    return _detect(
        _kept_blocks(handle, pipeline, err, block_bytes, read), read, pipeline, out=out, err=err, clock_ms=clock_ms
    )


def _detect(
    kept: Iterator[tuple[_Line, bytes]],
    read: _Read,
    pipeline: Pipeline,
    *,
    out: IO[bytes],
    err: IO[str],
    clock_ms: WallClockMs,
) -> int:
    if pipeline.prefilter_off_reason is not None:
        err.write(f"shellwatch detect: pre-filter off: {pipeline.prefilter_off_reason}\n")
    for line, raw in kept:
        outcome = pipeline.process(raw, clock_ms(), screened=True)
        if outcome.error is not None:
            err.write(f"line {line.number()}: {outcome.error.reason}: {printable(outcome.error.message)}\n")
        _write_alerts(out, outcome.alerts)
    _write_alerts(out, pipeline.flush(clock_ms()))
    stats = pipeline.stats
    undecodable = sum(stats.undecodable.values())
    reasons = ", ".join(f"{reason}={count}" for reason, count in sorted(stats.undecodable.items()))
    late = pipeline.correlator.stats.late
    err.write(
        f"shellwatch detect: {read.lines} lines read, {stats.prefiltered} pre-filtered, "
        f"{undecodable} undecodable{f' ({reasons})' if reasons else ''}, {late} late, "
        f"{stats.alerts} alerts, {stats.suppressed} grouped into earlier alerts\n"
    )
    err.flush()
    return 0


def _kept_lines(
    lines: Iterable[bytes], pipeline: Pipeline, err: IO[str], batch_lines: int, read: _Read
) -> Iterator[tuple[_Line, bytes]]:
    """(where, record) of each line the pre-filter lets through, ``batch_lines`` lines screened at a time."""
    source = iter(lines)
    while chunk := list(islice(source, batch_lines)):
        number = read.lines
        if may_hold_captures(chunk):
            raws = [record_value(line.rstrip(b"\r\n"), number + offset + 1, err) for offset, line in enumerate(chunk)]
        else:  # plain lines are screened as they are (a line end holds no needle) and stripped once kept
            raws = chunk
        read.lines += len(raws)
        for index in pipeline.prefilter_batch(raws):
            yield _Line(b"", 0, number + index), raws[index].rstrip(b"\r\n")


def _kept_blocks(
    handle: IO[bytes], pipeline: Pipeline, err: IO[str], block_bytes: int, read: _Read
) -> Iterator[tuple[_Line, bytes]]:
    """As :func:`_kept_lines` over whole lines read in blocks; a block that may hold a capture line (or any block,
    with the pre-filter off) goes line by line."""
    while block := handle.read(block_bytes):
        if not block.endswith(b"\n"):  # the rest of its last line, however long (none at the end of the input)
            block += handle.readline()
        ended = block.endswith(b"\n")  # else this is the input's last line, without its line end
        if pipeline.prefilter.needles is None or block_may_hold_captures(block):
            lines = block.split(b"\n")
            yield from _kept_lines(lines[:-1] if ended else lines, pipeline, err, len(block), read)
            continue
        count = len(_LINE_FEEDS.find_matches_as_indexes(block)) + (not ended)
        for start, end in pipeline.prefilter_lines(block, count):
            yield _Line(block, start, read.lines), block[start:end].rstrip(b"\r")
        read.lines += count


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
