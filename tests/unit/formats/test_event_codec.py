from __future__ import annotations

import pytest

from shellwatch.formats.event_codec import Decoded, DecodeError, decode_json_event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"a": ', "invalid_json"),
        (b'{"a": "\xff\xfe"}', "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"java"', "not_an_object"),
        (b'{"@timestamp": "soon", "event": {"category": "process"}}', "invalid_timestamp"),
        (b'{"@timestamp": true}', "invalid_timestamp"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    ],
)
def test_undecodable_records_are_errors_not_exceptions(raw: bytes, reason: str) -> None:
    result = decode_json_event(raw)
    assert isinstance(result, DecodeError)
    assert result.reason == reason


def test_missing_fields_are_not_errors() -> None:
    result = decode_json_event(b'{"event": {"category": "process"}}')
    assert isinstance(result, Decoded)
    (event,) = result.events
    assert event.timestamp_ms is None and event.host_id is None and event.os_types == ()


def test_other_categories_decode_to_nothing() -> None:
    result = decode_json_event(b'{"event": {"category": ["file"]}, "process": {"executable": "/usr/bin/java"}}')
    assert isinstance(result, Decoded) and result.events == ()
