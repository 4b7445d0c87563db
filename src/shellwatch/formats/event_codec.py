"""Bytes to events: the one place that maps ECS wire field names onto the typed events.

``decode_json_event`` returns a :class:`Decoded` (zero, one or more events: a document whose
``event.category`` holds both ``network`` and ``process`` is both; one of another category named in
``categories``, the inputs an operator's rule reads, is also a :class:`~shellwatch.ecs.events.CategoryEvent`)
or a :class:`DecodeError`; it never raises.
A document that lacks a field is not an error: that field is simply empty. A present
``@timestamp`` that cannot be parsed is an error (the event could never be placed in time).

The document is flattened once, under the typed events' paths and those ``fields`` adds (a rule's, from
:func:`decode_fields`); each event keeps that flattening as its ``flat`` for the rule's compiled predicates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

import orjson

from shellwatch.ecs.events import CategoryEvent, Event, NetworkEvent, ProcessEvent
from shellwatch.ecs.fields import FieldSet, Flat, flatten, keywords, single
from shellwatch.ecs.timestamps import InvalidTimestampError, parse_timestamp_ms
from shellwatch.formats.avro import (
    CONFLUENT_MAGIC,
    SINGLE_OBJECT_MAGIC,
    AvroDecodeError,
    AvroSchemas,
    render,
    shipped_schemas,
)

__all__ = [
    "MODEL_FIELDS",
    "ROUTING_FIELDS",
    "DecodeError",
    "DecodeReason",
    "Decoded",
    "Router",
    "Routing",
    "decode_fields",
    "decode_json_event",
    "decode_record",
    "load_json_document",
    "route_record",
]

DecodeReason = Literal[
    "empty",
    "invalid_json",
    "not_an_object",
    "invalid_timestamp",
    "too_deep",
    "invalid_avro",
    "unknown_schema",
    "schema_registry_unsupported",
]


@dataclass(frozen=True, slots=True)
class DecodeError:
    reason: DecodeReason | str
    message: str


@dataclass(frozen=True, slots=True)
class Decoded:
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Routing:
    """What the pre-filter stage routes a record by: the kinds of the events a full decode gives it (its inputs,
    in that order; none for a document of no input), its host and its ``@timestamp``."""

    kinds: tuple[str, ...]
    host_id: str | None
    timestamp_ms: int | None
    # False: its events are some input's, but no loaded rule can match any of them (a check the caller makes on
    # the decoded events, see Pipeline.decode_for_routing); the stage drops it. The codec itself always says True.
    relevant: bool = True


SchemaResolver = Callable[[int], Any]  # registry schema id -> parsed writer schema; raises LookupError
Decoder = Callable[[bytes], "Decoded | DecodeError"]
Router = Callable[[bytes], "Routing | DecodeError"]


# The wire-to-model mapping: event attribute -> ECS field path. Single-valued fields are identities.
COMMON_SINGLE = {
    "host_id": "host.id",
    "host_name": "host.name",
    "event_id": "event.id",
    "entity_id": "process.entity_id",
}
COMMON_MULTI = {"os_types": "host.os.type", "actions": "event.action"}
NETWORK_MULTI = {"executables": "process.executable", "destination_ips": "destination.ip"}
PROCESS_SINGLE = {"parent_entity_id": "process.parent.entity_id"}
PROCESS_MULTI = {
    "names": "process.name",
    "executables": "process.executable",
    "args": "process.args",
    "command_lines": "process.command_line",
    "env_vars": "process.env_vars",
    "parent_names": "process.parent.name",
    "parent_executables": "process.parent.executable",
    "parent_args": "process.parent.args",
    "parent_command_lines": "process.parent.command_line",
}


MODEL_FIELDS: Final = frozenset(
    {"@timestamp", "event.category"}
    | {path for m in (COMMON_SINGLE, COMMON_MULTI, NETWORK_MULTI, PROCESS_SINGLE, PROCESS_MULTI) for path in m.values()}
)
_FIELDS: Final = FieldSet(MODEL_FIELDS)
# what routing a record needs (stage 1: its inputs, host and event time): a decode that reads only these fails
# exactly when a full one does (an unparsable @timestamp is the only field-dependent error)
ROUTING_FIELDS: Final = FieldSet({"@timestamp", "event.category", "host.id"})
_BUNDLED: Final = frozenset({"network", "process"})  # typed events of their own
_AVRO_FIRST_BYTES: Final = frozenset({SINGLE_OBJECT_MAGIC[:1], CONFLUENT_MAGIC})  # any other first byte: JSON
_COMMON_SINGLE, _COMMON_MULTI = tuple(COMMON_SINGLE.items()), tuple(COMMON_MULTI.items())
_NETWORK_MULTI, _PROCESS_SINGLE = tuple(NETWORK_MULTI.items()), tuple(PROCESS_SINGLE.items())
_PROCESS_MULTI = tuple(PROCESS_MULTI.items())


@lru_cache(maxsize=16)
def decode_fields(paths: frozenset[str]) -> FieldSet:
    """What a decode flattens for a rule that reads ``paths``: those and the typed events' own (one object per
    set of paths, so callers can compare by identity)."""
    return FieldSet(MODEL_FIELDS | paths)


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


def decode_record(
    raw: bytes,
    avro: AvroSchemas | None = None,
    registry: SchemaResolver | None = None,
    *,
    fields: FieldSet = _FIELDS,
    categories: frozenset[str] = frozenset(),
) -> Decoded | DecodeError:
    """Decode one input record, sniffing its format: Avro single-object encoding, Confluent's
    registry framing (``00`` + schema id, resolved through ``registry``), else ECS JSON.

    Avro records are decoded with ``avro`` (default: the shipped schemas); the event's ``raw`` is then
    the decoded document rendered as JSON, which is what alerts quote. ``categories``: the other event
    categories that become :class:`~shellwatch.ecs.events.CategoryEvent` s.
    """
    loaded = _load(raw, avro, registry)
    if isinstance(loaded, DecodeError):
        return loaded
    doc, from_avro = loaded
    return events_from_document(doc, render(doc) if from_avro else raw, fields, categories)


def route_record(
    raw: bytes,
    avro: AvroSchemas | None = None,
    registry: SchemaResolver | None = None,
    *,
    categories: frozenset[str] = frozenset(),
) -> Routing | DecodeError:
    """What :func:`decode_record` would route the record by (its events' kinds, host and time) without building
    the events: the pre-filter stage's decode, which forwards the bytes. It fails exactly when
    :func:`decode_record` does (the ``@timestamp`` is the only field that can fail a decode)."""
    loaded = _load(raw, avro, registry)
    if isinstance(loaded, DecodeError):
        return loaded
    doc = flatten(loaded[0], ROUTING_FIELDS)
    head = _head(doc, categories)
    if isinstance(head, DecodeError):
        return head
    timestamp_ms, kinds = head
    return Routing(kinds, single(doc.get("host.id")), timestamp_ms)


def _load(
    raw: bytes, avro: AvroSchemas | None, registry: SchemaResolver | None
) -> tuple[Mapping[str, Any], bool] | DecodeError:
    """The record's document, and whether it came as Avro (alerts then quote it rendered as JSON)."""
    if raw[:1] in _AVRO_FIRST_BYTES:  # else JSON (or not a record at all), the common case, decided at once
        framed = _load_avro(raw, avro, registry)
        if framed is not None:
            return framed if isinstance(framed, DecodeError) else (framed, True)
    doc = load_json_document(raw)
    return doc if isinstance(doc, DecodeError) else (doc, False)


def _load_avro(
    raw: bytes, avro: AvroSchemas | None, registry: SchemaResolver | None
) -> Mapping[str, Any] | DecodeError | None:
    """An Avro record's document (single-object encoding, or Confluent's registry framing); ``None`` when ``raw``
    is framed as neither."""
    schemas = avro or shipped_schemas()
    try:
        if raw[:2] == SINGLE_OBJECT_MAGIC:
            return schemas.decode(raw)
        if raw[:1] == CONFLUENT_MAGIC and len(raw) >= 5:
            schema_id = int.from_bytes(raw[1:5], "big")
            if registry is None:
                return DecodeError(
                    "schema_registry_unsupported",
                    f"Confluent wire format (schema id {schema_id}) needs SHELLWATCH_SCHEMA_REGISTRY_URL",
                )
            try:
                writer = registry(schema_id)
            except LookupError as exc:
                return DecodeError("unknown_schema", f"schema id {schema_id}: {exc}")
            return schemas.decode_body(raw[5:], writer)
    except AvroDecodeError as exc:
        return DecodeError(exc.reason, str(exc))
    return None


def _head(doc: Flat, categories: frozenset[str]) -> tuple[int | None, tuple[str, ...]] | DecodeError:
    """A flattened document's time and the kinds of its events, in their order: network, process, then the
    other ``categories`` it names, sorted."""
    stamps = doc.get("@timestamp")
    timestamp_ms: int | None = None
    if stamps:
        try:
            timestamp_ms = parse_timestamp_ms(stamps[0])
        except InvalidTimestampError as exc:
            return DecodeError("invalid_timestamp", str(exc))
    present = keywords(doc.get("event.category"))
    kinds: list[str] = [kind for kind in ("network", "process") if kind in present]
    if categories:
        kinds += sorted(c for c in categories.intersection(present) if c not in _BUNDLED)
    return timestamp_ms, tuple(kinds)


def decode_json_event(
    raw: bytes, *, fields: FieldSet = _FIELDS, categories: frozenset[str] = frozenset()
) -> Decoded | DecodeError:
    doc = load_json_document(raw)
    if isinstance(doc, DecodeError):
        return doc
    return events_from_document(doc, raw, fields, categories)


def events_from_document(
    document: Mapping[str, Any],
    raw: bytes,
    fields: FieldSet = _FIELDS,
    categories: frozenset[str] = frozenset(),
) -> Decoded | DecodeError:
    doc = flatten(document, fields)
    head = _head(doc, categories)
    if isinstance(head, DecodeError):
        return head
    timestamp_ms, kinds = head
    get = doc.get
    common: dict[str, Any] = {"raw": raw, "timestamp_ms": timestamp_ms, "flat": doc}
    for name, path in _COMMON_SINGLE:
        common[name] = single(get(path))
    for name, path in _COMMON_MULTI:
        common[name] = keywords(get(path))
    events: list[Event] = []
    for kind in kinds:
        if kind == "network":
            network: dict[str, Any] = {name: keywords(get(path)) for name, path in _NETWORK_MULTI}
            events.append(NetworkEvent(**common, **network))
        elif kind == "process":
            process: dict[str, Any] = {name: single(get(path)) for name, path in _PROCESS_SINGLE}
            for name, path in _PROCESS_MULTI:
                process[name] = keywords(get(path))
            events.append(ProcessEvent(**common, **process))
        else:
            events.append(CategoryEvent(**common, category=kind))
    return Decoded(tuple(events))
