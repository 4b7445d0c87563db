"""Bytes to events: the one place that maps ECS wire field names onto the typed events.

``decode_json_event`` returns a :class:`Decoded` (zero, one or two events: a document whose
``event.category`` holds both ``network`` and ``process`` is both) or a :class:`DecodeError`; it
never raises. A document that lacks a field is not an error: that field is simply empty. A present
``@timestamp`` that cannot be parsed is an error (the event could never be placed in time).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from shellwatch.ecs import field_values, keyword_values, single_keyword
from shellwatch.events import Event, NetworkEvent, ProcessEvent
from shellwatch.timestamps import InvalidTimestampError, parse_timestamp_ms

__all__ = ["DecodeError", "DecodeReason", "Decoded", "decode_json_event", "load_json_document"]

DecodeReason = Literal["empty", "invalid_json", "not_an_object", "invalid_timestamp", "too_deep"]


@dataclass(frozen=True, slots=True)
class DecodeError:
    reason: DecodeReason
    message: str


@dataclass(frozen=True, slots=True)
class Decoded:
    events: tuple[Event, ...]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json_document(raw: bytes) -> dict[str, Any] | DecodeError:
    """Decode one JSON object. orjson first; numbers it refuses fall back to the standard library."""
    if not raw.strip():
        return DecodeError("empty", "empty record")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as fast_error:
        try:
            doc = json.loads(raw, parse_constant=_reject_constant)
        except RecursionError:
            return DecodeError("too_deep", "JSON nested too deeply")
        except ValueError:
            return DecodeError("invalid_json", f"invalid JSON: {fast_error}")
    if not isinstance(doc, dict):
        return DecodeError("not_an_object", f"JSON value is a {type(doc).__name__}, not an object")
    return doc


def decode_json_event(raw: bytes) -> Decoded | DecodeError:
    doc = load_json_document(raw)
    if isinstance(doc, DecodeError):
        return doc
    return events_from_document(doc, raw)


def events_from_document(doc: Mapping[str, Any], raw: bytes) -> Decoded | DecodeError:
    stamps = field_values(doc, "@timestamp")
    timestamp_ms: int | None = None
    if stamps:
        try:
            timestamp_ms = parse_timestamp_ms(stamps[0])
        except InvalidTimestampError as exc:
            return DecodeError("invalid_timestamp", str(exc))
    categories = keyword_values(doc, "event.category")
    common: dict[str, Any] = {
        "raw": raw,
        "timestamp_ms": timestamp_ms,
        "host_id": single_keyword(doc, "host.id"),
        "host_name": single_keyword(doc, "host.name"),
        "event_id": single_keyword(doc, "event.id"),
        "os_types": keyword_values(doc, "host.os.type"),
        "actions": keyword_values(doc, "event.action"),
        "entity_id": single_keyword(doc, "process.entity_id"),
    }
    events: list[Event] = []
    if "network" in categories:
        events.append(
            NetworkEvent(
                **common,
                executables=keyword_values(doc, "process.executable"),
                destination_ips=keyword_values(doc, "destination.ip"),
            )
        )
    if "process" in categories:
        events.append(
            ProcessEvent(
                **common,
                names=keyword_values(doc, "process.name"),
                executables=keyword_values(doc, "process.executable"),
                args=keyword_values(doc, "process.args"),
                command_lines=keyword_values(doc, "process.command_line"),
                env_vars=keyword_values(doc, "process.env_vars"),
                parent_entity_id=single_keyword(doc, "process.parent.entity_id"),
                parent_names=keyword_values(doc, "process.parent.name"),
                parent_executables=keyword_values(doc, "process.parent.executable"),
                parent_args=keyword_values(doc, "process.parent.args"),
                parent_command_lines=keyword_values(doc, "process.parent.command_line"),
            )
        )
    return Decoded(tuple(events))
