"""The capture format of ``shellwatch record`` / ``shellwatch replay``: one Kafka record per NDJSON line.

A line is a JSON object whose first key is ``topic``::

    {"topic": "logs-endpoint.events.process", "partition": 3, "offset": 1207, "timestamp_ms": 1700000000123,
     "timestamp_type": "create", "key": "host-1", "headers": [["name", "value"]], "value": "{\\"@timestamp\\": ...}"}

Bytes are kept exactly: ``key``, ``value`` and each header value are JSON strings when the bytes are UTF-8
(so a captured ECS document stays readable and greppable, and scrubbing it is a text edit), and otherwise
base64 under ``key_b64`` / ``value_b64`` / ``["name", null, "base64"]``. ``null`` is a missing key or value.
Plain ECS NDJSON lines (no ``topic`` first) are not captures: :func:`parse_capture_line` returns ``None``.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Literal

import orjson
from ahocorasick_rs import BytesAhoCorasick

from shellwatch.errors import CaptureError

__all__ = [
    "CaptureError",
    "CapturedRecord",
    "TimestampType",
    "block_may_hold_captures",
    "capture_line",
    "may_hold_captures",
    "parse_capture_line",
]

TimestampType = Literal["create", "log_append", "none"]
_PREFIX = b'{"topic":'
_CAPTURE_STARTS = (_PREFIX, b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c")  # the prefix, or what lstrip() skips
# the same after a line feed, searched in one pass (CPython's search for a two-byte string is slow)
_LINE_CAPTURE_STARTS = BytesAhoCorasick([b"\n" + start for start in _CAPTURE_STARTS])


@dataclass(frozen=True, slots=True)
class CapturedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_type: TimestampType = "create"


def _text_or_b64(data: bytes) -> tuple[str, bool]:
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def capture_line(record: CapturedRecord) -> bytes:
    """The record as one NDJSON line (no newline)."""
    doc: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "timestamp_type": record.timestamp_type,
    }
    _put_bytes(doc, "key", record.key)
    headers: list[list[str | None]] = []
    for name, value in record.headers:
        if value is None:
            headers.append([name, None])
            continue
        text, is_b64 = _text_or_b64(value)
        headers.append([name, text, "base64"] if is_b64 else [name, text])
    doc["headers"] = headers
    _put_bytes(doc, "value", record.value)
    return orjson.dumps(doc)


def _put_bytes(doc: dict[str, Any], name: str, data: bytes | None) -> None:
    if data is None:
        doc[name] = None
        return
    text, is_b64 = _text_or_b64(data)
    doc[f"{name}_b64" if is_b64 else name] = text


def may_hold_captures(lines: Sequence[bytes]) -> bool:
    """False only when no line of ``lines`` is a capture line (its start checked in C, no Python step per line):
    then each line is its own record as it stands. A line starting with white space may be one."""
    return any(map(bytes.startswith, lines, repeat(_CAPTURE_STARTS)))


def block_may_hold_captures(block: bytes) -> bool:
    """:func:`may_hold_captures` for the lines of ``block`` (separated by line feeds), without cutting them out."""
    return block.startswith(_CAPTURE_STARTS) or bool(_LINE_CAPTURE_STARTS.find_matches_as_indexes(block))


def parse_capture_line(line: bytes) -> CapturedRecord | None:
    """The captured record on ``line``, ``None`` for a line that is not a capture (plain ECS NDJSON).

    Raises :class:`CaptureError` for a line that starts like a capture and is not one.
    """
    if not line.lstrip().startswith(_PREFIX):
        return None
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CaptureError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CaptureError("not a JSON object")
    try:
        timestamp_type = doc.get("timestamp_type", "create")
        if timestamp_type not in ("create", "log_append", "none"):
            raise CaptureError(f"timestamp_type: unknown {timestamp_type!r}")
        timestamp = doc.get("timestamp_ms")
        return CapturedRecord(
            topic=_str(doc, "topic"),
            partition=_int(doc, "partition"),
            offset=_int(doc, "offset"),
            timestamp_ms=None if timestamp is None else _int(doc, "timestamp_ms"),
            key=_get_bytes(doc, "key"),
            value=_get_bytes(doc, "value"),
            headers=_headers(doc.get("headers") or []),
            timestamp_type=timestamp_type,
        )
    except (binascii.Error, ValueError) as exc:
        if isinstance(exc, CaptureError):
            raise
        raise CaptureError(str(exc)) from None


def _str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise CaptureError(f"{name}: expected a non-empty string")
    return value


def _int(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CaptureError(f"{name}: expected an integer")
    return value


def _get_bytes(doc: dict[str, Any], name: str) -> bytes | None:
    encoded = doc.get(f"{name}_b64")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise CaptureError(f"{name}_b64: expected a base64 string")
        return base64.b64decode(encoded, validate=True)
    text = doc.get(name)
    if text is None:
        return None
    if not isinstance(text, str):
        raise CaptureError(f"{name}: expected a string (the bytes as UTF-8 text) or null")
    return text.encode("utf-8", "surrogatepass")


def _headers(raw: Sequence[Any]) -> tuple[tuple[str, bytes | None], ...]:
    if not isinstance(raw, list):
        raise CaptureError("headers: expected a list of [name, value] pairs")
    out: list[tuple[str, bytes | None]] = []
    for item in raw:
        if not isinstance(item, list) or len(item) not in (2, 3) or not isinstance(item[0], str):
            raise CaptureError(f"headers: bad entry {item!r}")
        value = item[1]
        if value is None:
            out.append((item[0], None))
        elif not isinstance(value, str):
            raise CaptureError(f"headers: value of {item[0]!r} must be a string or null")
        elif len(item) == 3:
            if item[2] != "base64":
                raise CaptureError(f"headers: unknown encoding {item[2]!r}")
            out.append((item[0], base64.b64decode(value, validate=True)))
        else:
            out.append((item[0], value.encode("utf-8", "surrogatepass")))
    return tuple(out)
