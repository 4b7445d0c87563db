"""Small builders for test events: realistic ECS documents with any field overridden or removed."""

from __future__ import annotations

import json
from typing import Any

import orjson

from shellwatch.ecs.events import BundledEvent, CategoryEvent, NetworkEvent, ProcessEvent
from shellwatch.formats.event_codec import Decoded, decode_json_event
from shellwatch.samples.ecs_factory import connection, execution

MISSING = object()
HOST = "host-a"
T0 = 1_700_000_000_000


def deep_set(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is MISSING:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def conn_doc(
    ts_ms: int = T0,
    *,
    host: str = HOST,
    pid: int = 100,
    ip: str | None = "8.8.8.8",
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    doc = connection(ts_ms=ts_ms, host_id=host, pid=pid, dest_ip=ip, event_id=event_id or f"c-{host}-{pid}-{ts_ms}")
    for path, value in fields.items():
        deep_set(doc, path.replace("__", "."), value)
    return doc


def exec_doc(
    ts_ms: int = T0 + 1000,
    *,
    host: str = HOST,
    parent_pid: int = 100,
    pid: int = 999,
    event_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    doc = execution(
        ts_ms=ts_ms,
        host_id=host,
        pid=pid,
        parent_pid=parent_pid,
        event_id=event_id or f"x-{host}-{parent_pid}-{ts_ms}-{pid}",
    )
    for path, value in fields.items():
        deep_set(doc, path.replace("__", "."), value)
    return doc


def decode(doc: dict[str, Any] | bytes) -> Decoded:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    decoded = decode_json_event(raw)
    assert isinstance(decoded, Decoded), decoded
    return decoded


def bundled(decoded: Decoded) -> tuple[BundledEvent, ...]:
    """The events the bundled rules read (a decode without ``categories`` yields no others)."""
    events = tuple(e for e in decoded.events if not isinstance(e, CategoryEvent))
    assert len(events) == len(decoded.events), decoded
    return events


def net(doc: dict[str, Any] | bytes) -> NetworkEvent:
    (event,) = [e for e in decode(doc).events if isinstance(e, NetworkEvent)]
    return event


def proc(doc: dict[str, Any] | bytes) -> ProcessEvent:
    (event,) = [e for e in decode(doc).events if isinstance(e, ProcessEvent)]
    return event


def _escaped_string(text: str, choices: list[int]) -> str:
    out = ['"']
    for index, ch in enumerate(text):
        mode = choices[index % len(choices)] if choices else 0
        if ch in '"\\' or ord(ch) < 0x20:
            out.append(json.dumps(ch)[1:-1])
        elif mode == 1:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else json.dumps(ch)[1:-1])
        elif mode == 2 and ch == "/":
            out.append("\\/")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def encode_with_escapes(node: Any, choices: list[int]) -> str:
    """JSON with escapes chosen by ``choices``: the same document, spelled differently."""
    if isinstance(node, dict):
        return (
            "{"
            + ",".join(f"{_escaped_string(k, choices)}:{encode_with_escapes(v, choices)}" for k, v in node.items())
            + "}"
        )
    if isinstance(node, list):
        return "[" + ",".join(encode_with_escapes(v, choices) for v in node) + "]"
    if isinstance(node, str):
        return _escaped_string(node, choices)
    return json.dumps(node)
