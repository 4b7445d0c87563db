"""The capture format: exact round trips of any bytes, readable text, plain ECS lines left alone."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shellwatch.formats.capture import CapturedRecord, CaptureError, capture_line, parse_capture_line

maybe_bytes = st.none() | st.binary(max_size=64) | st.text(max_size=32).map(lambda t: t.encode())
records = st.builds(
    CapturedRecord,
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(0, 1000),
    offset=st.integers(0, 2**62),
    timestamp_ms=st.none() | st.integers(0, 2**45),
    key=maybe_bytes,
    value=maybe_bytes,
    headers=st.lists(st.tuples(st.text(max_size=10), maybe_bytes), max_size=4).map(tuple),
    timestamp_type=st.sampled_from(["create", "log_append", "none"]),
)


@given(records)
def test_any_record_round_trips_exactly(record: CapturedRecord) -> None:
    line = capture_line(record)
    assert b"\n" not in line
    assert parse_capture_line(line) == record


def test_utf8_values_stay_readable_and_others_are_base64() -> None:
    doc = b'{"@timestamp":"2026-11-01T00:00:00.000Z","event":{"id":"e1"}}'
    binary = b"\xc3\x01\x00\xff avro body"
    line = capture_line(CapturedRecord("t", 0, 5, 1, key=b"host-1", value=doc, headers=(("h", binary),)))
    parsed = orjson.loads(line)
    assert next(iter(parsed)) == "topic"
    assert parsed["value"] == doc.decode() and parsed["key"] == "host-1"
    assert parsed["headers"] == [["h", base64.b64encode(binary).decode(), "base64"]]
    binary_line = orjson.loads(capture_line(CapturedRecord("t", 0, 6, 1, key=None, value=binary)))
    assert binary_line["value_b64"] == base64.b64encode(binary).decode() and "value" not in binary_line


def test_plain_ecs_lines_are_not_captures() -> None:
    assert parse_capture_line(b'{"@timestamp":"2026-11-01T00:00:00Z","topic":"x"}') is None
    assert parse_capture_line(b"not json at all") is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"topic":"t"', "not JSON"),
        (b'{"topic":"t","partition":"0","offset":1,"value":null}', "partition"),
        (b'{"topic":"","partition":0,"offset":1,"value":null}', "topic"),
        (b'{"topic":"t","partition":0,"offset":1,"value_b64":"***"}', "base64|Incorrect|Invalid|Non-base64"),
        (b'{"topic":"t","partition":0,"offset":1,"value":5}', "value"),
        (b'{"topic":"t","partition":0,"offset":1,"headers":[["h",1]]}', "headers"),
        (b'{"topic":"t","partition":0,"offset":1,"headers":[["h","x","rot13"]]}', "encoding"),
        (b'{"topic":"t","partition":0,"offset":1,"timestamp_type":"wall"}', "timestamp_type"),
    ],
)
def test_broken_capture_lines_name_the_problem(line: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        parse_capture_line(line)
