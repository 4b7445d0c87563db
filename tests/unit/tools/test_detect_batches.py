"""``run_detect`` over a file's batches: plain lines are screened as read and stripped once kept, capture lines are
unwrapped first; neither line ends nor the batch size nor captures change what it reports."""

from __future__ import annotations

import io

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.capture import CapturedRecord, block_may_hold_captures, capture_line, may_hold_captures
from shellwatch.tools.detect import run_detect, run_detect_file
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


def detect_file(text: bytes, block_bytes: int) -> tuple[list[bytes], str]:
    out, err = io.BytesIO(), io.StringIO()
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    assert run_detect_file(io.BytesIO(text), pipeline, out, err, lambda: 0, block_bytes=block_bytes) == 0
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


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 300, 1 << 20])
def test_a_file_read_in_blocks_reports_as_line_by_line(block_bytes: int) -> None:
    # blocks of plain lines are screened in place; a block holding a capture (or a blank line) goes line by line;
    # a line cut by a block's end is carried into the next; the line numbers of errors stay the file's own
    for end in (b"\n", b"\r\n"):
        lines = [raw + end for raw in RECORDS]
        assert detect_file(b"".join(lines), block_bytes) == detect_lines(lines, 1)
        no_last_end = b"".join(lines).removesuffix(end)
        assert detect_file(no_last_end, block_bytes) == detect_lines([*lines[:-1], RECORDS[-1]], 1)
    plain = [raw + b"\n" for raw in RECORDS if raw] * 3
    reference = detect_lines(plain, 1)
    assert len(reference[0]) == 2 and "line 10: " in reference[1]  # the second copy of the truncated record
    assert detect_file(b"".join(plain), block_bytes) == reference
    mixed = [(captured(i, raw) if i % 2 else raw) + b"\n" for i, raw in enumerate(RECORDS)]
    assert detect_file(b"".join(mixed), block_bytes) == detect_lines(mixed, 1)


def test_a_line_longer_than_many_blocks_is_read_whole() -> None:
    # the rest of a block's last line is read at once, however long (no block-by-block concatenation)
    doc = exec_doc(T0 + 2_000)
    doc["padding"] = "x" * 300_000
    lines = [raw + b"\n" for raw in RECORDS[:3]] + [orjson.dumps(doc) + b"\n", orjson.dumps(conn_doc(T0)) + b"\n"]
    reference = detect_lines(lines, 1)
    assert len(reference[0]) >= 2 and "5 lines read" in reference[1]
    assert detect_file(b"".join(lines), 1024) == reference
    assert detect_file(b"".join(lines).removesuffix(b"\n"), 1024) == reference


def test_a_capture_is_noticed_anywhere_in_a_block() -> None:
    plain = b"".join(raw + b"\n" for raw in RECORDS if raw)
    assert not block_may_hold_captures(plain)
    for capture in (b'{"topic":"edr","partition":0,"offset":1}\n', b"\t {}\n", b"\n"):
        assert block_may_hold_captures(plain + capture + plain)
        assert block_may_hold_captures(capture + plain)


def test_a_capture_is_noticed_anywhere_in_a_batch() -> None:
    plain = [raw + b"\n" for raw in RECORDS if raw]  # (a blank line starts with white space: it may be one)
    assert not may_hold_captures(plain)  # a "topic" key inside a document is no capture
    assert may_hold_captures([*plain[:3], b'{"topic":"edr","partition":0,"offset":1}\n', *plain[3:]])
    assert may_hold_captures([*plain[:3], b'\t {"topic":"edr","partition":0,"offset":1}\n', *plain[3:]])
