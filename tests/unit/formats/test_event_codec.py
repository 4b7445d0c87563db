from __future__ import annotations

import pytest

from shellwatch.formats.event_codec import Decoded, DecodeError, decode_fields, decode_json_event


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


def test_categories_an_operator_rule_reads_decode_to_events_of_that_input() -> None:
    raw = b'{"@timestamp": "2026-01-01T00:00:00Z", "event": {"category": ["file", "process"], "id": "e"},'
    raw += b' "host": {"id": "h"}, "file": {"path": "/tmp/x"}}'
    result = decode_json_event(raw, categories=frozenset({"file", "library", "process"}))
    assert isinstance(result, Decoded)
    assert [(type(e).__name__, e.kind) for e in result.events] == [
        ("ProcessEvent", "process"),
        ("CategoryEvent", "file"),
    ]
    other = result.events[1]
    assert (other.host_id, other.event_id, other.timestamp_ms, other.raw) == ("h", "e", 1_767_225_600_000, raw)


def test_events_keep_the_flattened_fields_of_the_decode() -> None:
    raw = (
        b'{"event": {"category": ["network", "process"]}, "process": {"executable": "/usr/bin/java",'
        b' "parent": {"args": ["-jar", 7]}}, "user": {"name": "alice", "id": 0}, "process.parent.args": "x"}'
    )
    plain = decode_json_event(raw)
    assert isinstance(plain, Decoded)
    assert plain.events[0].flat == {
        "event.category": ["network", "process"],
        "process.executable": ["/usr/bin/java"],
        "process.parent.args": ["-jar", 7, "x"],  # as received: numbers stay numbers
    }
    assert plain.events[1].flat is plain.events[0].flat  # one flattening per document
    for_rule = decode_json_event(raw, fields=decode_fields(frozenset({"user.name"})))
    assert isinstance(for_rule, Decoded)
    assert for_rule.events[0].flat["user.name"] == ["alice"] and "user.id" not in for_rule.events[0].flat
    assert decode_fields(frozenset({"user.name"})) is decode_fields(frozenset({"user.name"}))
