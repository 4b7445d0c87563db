"""Records as any EQL rule sees them: the decoded document with what ordering and alert ids need.

``@timestamp`` orders events, even for a rule that sets ``timestamp_override = "event.ingested"`` (a
stream has no ingest time). The identity of an event (the last part of an alert's ``event.id``, DESIGN §2
generalized) is its ``event.id``; else, for a process event, its ``process.entity_id`` (today's seed-rule
ids: an exec is its process); else the sha256 hex of its raw bytes. Pure code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from shellwatch.ecs.fields import FieldSet, Flat, flatten
from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.errors import InvalidTimestampError
from shellwatch.rules.eql_rule import EqlRule

__all__ = ["RuleEvent", "RuleEventError", "decode_rule_event", "rules_fields"]

_FIELDS: Final = FieldSet(["@timestamp", "event.id", "event.category", "process.entity_id", "host.id", "host.name"])


@dataclass(frozen=True, slots=True)
class RuleEvent:
    seq: int
    timestamp_ms: int
    source: str  # the input stream it belongs to: its event.category values, as Elastic Defend's data streams
    host_id: str | None
    host_name: str | None
    identity: str
    document: Mapping[str, Any]
    raw: bytes
    # the document flattened once under every loaded rule's fields (:func:`rules_fields`): each rule's stages read it
    flat: Flat
    replayed: bool = False  # the record came from ``shellwatch replay``: the alerts it completes say so


@dataclass(frozen=True, slots=True)
class RuleEventError:
    reason: str
    message: str


def _keyword(values: list[Any]) -> str | None:
    return values[0] if len(values) == 1 and isinstance(values[0], str) else None


def rules_fields(rules: Iterable[EqlRule]) -> FieldSet:
    """What a decode for ``rules`` flattens: the fields they read, and those ordering and identity read."""
    return FieldSet(_FIELDS.paths.union(*(rule.compiled.fields for rule in rules)))


def decode_rule_event(raw: bytes, seq: int, fields: FieldSet, *, replayed: bool = False) -> RuleEvent | RuleEventError:
    """``fields``: from :func:`rules_fields`, to flatten the document once for every rule that reads it."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return RuleEventError("invalid_json", str(exc))
    if not isinstance(document, dict):
        return RuleEventError("not_an_object", f"expected a JSON object, got {type(document).__name__}")
    flat = flatten(document, fields)
    stamps = flat.get("@timestamp", [])
    if len(stamps) != 1:
        return RuleEventError("invalid_timestamp", "@timestamp: expected exactly one value")
    try:
        timestamp_ms = parse_timestamp_ms(stamps[0])
    except InvalidTimestampError as exc:
        return RuleEventError("invalid_timestamp", str(exc))
    categories = [c for c in flat.get("event.category", []) if isinstance(c, str)]
    identity = _keyword(flat.get("event.id", []))
    if identity is None and "process" in categories:
        identity = _keyword(flat.get("process.entity_id", []))
    if identity is None:
        identity = hashlib.sha256(raw).hexdigest()
    return RuleEvent(
        seq=seq,
        timestamp_ms=timestamp_ms,
        source="|".join(sorted(categories)),
        host_id=_keyword(flat.get("host.id", [])),
        host_name=_keyword(flat.get("host.name", [])),
        identity=identity,
        document=document,
        raw=raw,
        flat=flat,
        replayed=replayed,
    )
