"""The code's models against ``schemas/*.avsc`` (one source of truth for the wire contract)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
from fastavro.validation import validate

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.events import NetworkEvent, ProcessEvent
from shellwatch.formats import event_codec as codec
from shellwatch.formats.alert_codec import avro_alert_record, decode_alert, encode_alert
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.tools.expectations import expectation_of_alert
from tests.unit.builders import conn_doc, exec_doc

SCHEMAS = Path(__file__).parents[3] / "schemas"


def load(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{name}.avsc").read_text())
    return schema


def paths(schema: Any, prefix: str = "") -> set[str]:
    """Every field path of a record schema (ECS ``@timestamp`` is Avro ``timestamp``)."""
    out: set[str] = set()
    if isinstance(schema, list):
        for branch in schema:
            out |= paths(branch, prefix)
    elif isinstance(schema, dict) and schema.get("type") == "record":
        for f in schema["fields"]:
            name = "@timestamp" if not prefix and f["name"] == "timestamp" else f["name"]
            out.add(prefix + name)
            out |= paths(f["type"], f"{prefix}{name}.")
    elif isinstance(schema, dict) and schema.get("type") == "array":
        out |= paths(schema["items"], prefix)
    return out


@pytest.mark.parametrize("name", ["network_event", "process_event", "alert"])
def test_schemas_parse(name: str) -> None:
    fastavro.parse_schema(load(name))


@pytest.mark.parametrize(
    ("schema", "event_type", "mappings"),
    [
        ("network_event", NetworkEvent, [codec.COMMON_SINGLE, codec.COMMON_MULTI, codec.NETWORK_MULTI]),
        (
            "process_event",
            ProcessEvent,
            [codec.COMMON_SINGLE, codec.COMMON_MULTI, codec.PROCESS_SINGLE, codec.PROCESS_MULTI],
        ),
    ],
)
def test_event_models_match_schemas(schema: str, event_type: type, mappings: list[dict[str, str]]) -> None:
    declared = paths(load(schema))
    read = {path for mapping in mappings for path in mapping.values()} | {"@timestamp", "event.category"}
    assert read <= declared, read - declared
    # raw, timestamp_ms and flat (the flattened document) are derived; replayed comes from the record's header
    attributes = {f.name for f in dataclasses.fields(event_type)} - {"raw", "timestamp_ms", "replayed", "flat"}
    assert attributes == {name for mapping in mappings for name in mapping}


def test_alert_documents_validate_against_alert_schema() -> None:
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig())
    for doc in (conn_doc(1_700_000_000_000), exec_doc(1_700_000_000_400, process__env_vars=["A=b"])):
        assert pipeline.process(orjson.dumps(doc), detected_ms=1_700_000_000_900).alerts == []
    (document,) = pipeline.flush(detected_ms=1_700_000_001_000)
    alert = orjson.loads(orjson.dumps(document))
    record = avro_alert_record(alert)
    assert validate(record, fastavro.parse_schema(load("alert")), strict=True)
    assert set(paths(load("alert"))) >= {"@timestamp", "event.id", "detection.latency_ms", "threat.technique.id"}


def _previous_alert_schema() -> dict[str, Any]:
    """Today's alert schema without the fields added since the first release (related_alert_ids,
    suppressed_count, rule.uuid)."""
    previous: dict[str, Any] = json.loads(json.dumps(load("alert")))
    detection = next(f for f in previous["fields"] if f["name"] == "detection")["type"]
    detection["fields"] = [f for f in detection["fields"] if f["name"] not in ("related_alert_ids", "suppressed_count")]
    rule = next(f for f in previous["fields"] if f["name"] == "rule")["type"]
    rule["fields"] = [f for f in rule["fields"] if f["name"] != "uuid"]
    return previous


def _seed_alert_record() -> dict[str, Any]:
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig())
    for doc in (conn_doc(1_700_000_000_000), exec_doc(1_700_000_000_400)):
        pipeline.process(orjson.dumps(doc), detected_ms=1_700_000_000_900)
    (document,) = pipeline.flush(detected_ms=1_700_000_001_000)
    return avro_alert_record(orjson.loads(orjson.dumps(document)))


def test_alert_schema_evolves_compatibly() -> None:
    """Alerts written before detection.related_alert_ids / suppressed_count and rule.uuid existed read with
    today's schema, and today's alerts read with that older schema."""
    current, previous = load("alert"), _previous_alert_schema()
    record = _seed_alert_record()
    assert record["rule"]["uuid"] == "5a3d5447-31c9-409a-aed1-72f9921594fd"
    old_record = dict(
        record,
        detection={k: v for k, v in record["detection"].items() if k not in ("related_alert_ids", "suppressed_count")},
        rule={k: v for k, v in record["rule"].items() if k != "uuid"},
    )
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(previous), old_record)
    buffer.seek(0)
    read = fastavro.schemaless_reader(buffer, fastavro.parse_schema(previous), fastavro.parse_schema(current))
    assert isinstance(read, dict)
    assert read["detection"]["related_alert_ids"] == [] and read["detection"]["suppressed_count"] == 0
    assert read["rule"]["uuid"] is None
    assert read["event"]["id"] == record["event"]["id"]
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(current), record)
    buffer.seek(0)
    old_read = fastavro.schemaless_reader(buffer, fastavro.parse_schema(current), fastavro.parse_schema(previous))
    assert isinstance(old_read, dict)
    assert old_read["rule"] == {k: v for k, v in record["rule"].items() if k != "uuid"}


def test_alerts_without_uuid_encode_it_as_null() -> None:
    """The shell rule has no Elastic id: its JSON alerts carry no rule.uuid, its Avro alerts a null one."""
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig(), load_shell_rule())
    (alert,) = pipeline.process(orjson.dumps(exec_doc(1_700_000_000_400)), detected_ms=1_700_000_000_900).alerts
    assert alert["rule"]["id"] == "shell-spawned-by-java" and "uuid" not in alert["rule"]
    encoded = encode_alert(alert, "avro")
    decoded = fastavro.schemaless_reader(io.BytesIO(encoded[10:]), fastavro.parse_schema(load("alert")))
    assert isinstance(decoded, dict) and decoded["rule"]["uuid"] is None


def test_alerts_encode_as_json_or_avro() -> None:
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig())
    for doc in (conn_doc(1_700_000_000_000), exec_doc(1_700_000_000_400)):
        pipeline.process(orjson.dumps(doc), detected_ms=1_700_000_000_900)
    (alert,) = pipeline.flush(detected_ms=1_700_000_001_000)
    as_json = orjson.loads(encode_alert(alert))
    assert as_json["event"]["id"] == alert["event"]["id"]
    encoded = encode_alert(alert, "avro")
    assert encoded[:2] == b"\xc3\x01"
    reader = fastavro.parse_schema(load("alert"))
    decoded = fastavro.schemaless_reader(io.BytesIO(encoded[10:]), reader)
    assert isinstance(decoded, dict)
    assert decoded["event"]["id"] == alert["event"]["id"] and decoded["timestamp"] == alert["@timestamp"]
    assert decoded["rule"] == alert["rule"] == as_json["rule"]
    assert alert["rule"]["uuid"] == "5a3d5447-31c9-409a-aed1-72f9921594fd"
    assert [orjson.loads(e)["event"]["id"] for e in decoded["detection"]["events"]] == [
        e["event"]["id"] for e in as_json["detection"]["events"]
    ]


def test_decode_alert_reads_both_wire_forms_and_expectations_agree() -> None:
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig())
    for doc in (conn_doc(1_700_000_000_000), exec_doc(1_700_000_000_400)):
        pipeline.process(orjson.dumps(doc), detected_ms=1_700_000_000_900)
    (document,) = pipeline.flush(detected_ms=1_700_000_001_000)
    as_json, as_avro = decode_alert(encode_alert(document, "json")), decode_alert(encode_alert(document, "avro"))
    assert as_json["event"]["id"] == as_avro["event"]["id"] == document["event"]["id"]
    assert as_avro["detection"]["replayed"] is False and isinstance(as_avro["detection"]["events"][0], str)
    assert expectation_of_alert(as_json) == expectation_of_alert(as_avro)
