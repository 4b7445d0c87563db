"""``run_detect`` over a file's batches: plain lines are screened as read and stripped once kept, capture lines are
unwrapped first; neither line ends nor the batch size nor captures change what it reports."""

from __future__ import annotations

import io

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.capture import CapturedRecord, capture_line, may_hold_captures
from shellwatch.tools.detect import run_detect
from tests.shared import RULE, SHELL_RULE
from tests.unit.builders import T0, conn_doc, exec_doc

RECORDS = [
    b'{"process": {"executable": "/usr/bin/java"',  # truncated
    orjson.dumps(conn_doc(T0)),
    b'{"@timestamp": "not a time", "event": {"category": "process"}, "x": "/usr/bin/java"}',
    b"",
    b"nothing relevant here at all",
    b'{"a": "\\/usr\\/bin\\/java"}',  # the needle only behind escapes
    orjson.dumps(exec_doc(T0 + 2_000)),
    b'{"kafka": {"topic": "not a capture"}, "x": "/usr/bin/java"}',
]


def detect_lines(lines: list[bytes], batch_lines: int) -> tuple[list[bytes], str]:
    out, err = io.BytesIO(), io.StringIO()
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    assert run_detect(lines, pipeline, out, err, lambda: 0, batch_lines=batch_lines) == 0
    return sorted(out.getvalue().splitlines()), err.getvalue()


def captured(offset: int, value: bytes) -> bytes:
    return capture_line(
        CapturedRecord(topic="edr", partition=0, offset=offset, timestamp_ms=None, key=None, value=value)
    )


@pytest.mark.parametrize("batch_lines", [1, 3, 4096])
def test_line_ends_batches_and_captures_report_the_same(batch_lines: int) -> None:
    reference = detect_lines([raw + b"\n" for raw in RECORDS], 1)
    alerts, report = reference
    assert len(alerts) == 2 and "8 lines read" in report and "line 1: " in report and "line 3: " in report
    assert detect_lines([raw + b"\r\n" for raw in RECORDS], batch_lines) == reference
    assert detect_lines([raw for raw in RECORDS], batch_lines) == reference  # the last line of a file: no line end
    mixed = [(captured(i, raw) if i % 2 else raw) + b"\n" for i, raw in enumerate(RECORDS)]
    assert detect_lines(mixed, batch_lines) == reference


def test_a_capture_is_noticed_anywhere_in_a_batch() -> None:
    plain = [raw + b"\n" for raw in RECORDS if raw]  # (a blank line starts with white space: it may be one)
    assert not may_hold_captures(plain)  # a "topic" key inside a document is no capture
    assert may_hold_captures([*plain[:3], b'{"topic":"edr","partition":0,"offset":1}\n', *plain[3:]])
    assert may_hold_captures([*plain[:3], b'\t {"topic":"edr","partition":0,"offset":1}\n', *plain[3:]])
