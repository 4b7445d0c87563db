"""Alerts on the wire: JSON (default) or Avro single-object encoding of ``schemas/alert.avsc``.

The alert documents themselves are built in :mod:`shellwatch.core.alerts`; this module only turns
them into bytes and back, so it needs nothing from the core.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import fastavro
import orjson

from shellwatch.formats.avro import SINGLE_OBJECT_MAGIC, encode_single_object

__all__ = ["AlertFormat", "avro_alert_record", "decode_alert", "encode_alert"]


def avro_alert_record(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert as a record of ``schemas/alert.avsc`` (``@timestamp`` -> ``timestamp``; quoted events
    and the explanation as JSON text; ``rule.uuid`` null when the alert has none)."""
    detection = dict(alert["detection"])
    detection["events"] = [bytes(orjson.dumps(e)).decode() for e in detection["events"]]
    detection["explanation"] = orjson.dumps(detection["explanation"]).decode()
    record = {key: value for key, value in alert.items() if key != "@timestamp"}
    record["timestamp"] = alert["@timestamp"]
    record["detection"] = detection
    record["rule"] = {"uuid": None, **alert["rule"]}
    return record


AlertFormat = Literal["json", "avro"]


@lru_cache(maxsize=1)
def _alert_schema() -> Any:
    return json.loads(resources.files("shellwatch.schemas").joinpath("alert.avsc").read_text())


@lru_cache(maxsize=1)
def _parsed_alert_schema() -> Any:
    return fastavro.parse_schema(_alert_schema())


def decode_alert(value: bytes) -> dict[str, Any]:
    """An alert as :func:`encode_alert` wrote it: JSON, or Avro single-object (then in the Avro record's shape:
    ``timestamp``, and ``detection.events`` / ``explanation`` as JSON text)."""
    if value.startswith(SINGLE_OBJECT_MAGIC):
        body = io.BytesIO(value[len(SINGLE_OBJECT_MAGIC) + 8 :])  # after the magic and the 8-byte fingerprint
        record: dict[str, Any] = fastavro.schemaless_reader(body, _parsed_alert_schema())  # type: ignore[assignment]
        return record
    try:
        doc: dict[str, Any] = orjson.loads(value)
    except orjson.JSONDecodeError:  # lone surrogate escapes: valid JSON that orjson refuses
        doc = json.loads(value)
    return doc


def encode_alert(alert: dict[str, Any], alert_format: AlertFormat = "json") -> bytes:
    """The alert's wire form: JSON (default) or Avro single-object encoding of ``schemas/alert.avsc``.

    Text taken from events (explanations) may hold lone surrogates, which JSON escapes allow but UTF-8
    cannot carry: such characters become U+FFFD in the alert's own fields; quoted events stay as received.
    """
    try:
        return _encode(alert, alert_format)
    except (TypeError, ValueError):
        return _encode(_valid_text(alert), alert_format)


def _encode(alert: dict[str, Any], alert_format: AlertFormat) -> bytes:
    if alert_format == "avro":
        return encode_single_object(_alert_schema(), avro_alert_record(alert))
    return orjson.dumps(alert)


def _valid_text(node: Any) -> Any:
    if isinstance(node, str):
        return node.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(node, dict):
        return {_valid_text(k): _valid_text(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_valid_text(v) for v in node]
    return node
