"""Avro input (single-object encoding per schemas/): decoding, schema evolution, bad records as data."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.events import NetworkEvent, ProcessEvent
from shellwatch.formats.avro import SINGLE_OBJECT_MAGIC, AvroSchemas, encode_single_object, shipped_schemas
from shellwatch.formats.event_codec import Decoded, DecodeError, decode_record
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule

SCHEMAS = Path(__file__).parents[3] / "schemas"
T0 = 1_700_000_000_000


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.avsc").read_text())
    return loaded


def connection_record(ts_ms: int = T0) -> dict[str, Any]:
    return {
        "timestamp": ts_ms,
        "event": {"id": "c1", "category": ["network"], "action": "connection_attempted"},
        "host": {"id": "h1", "name": "web-1", "os": {"type": "linux"}},
        "process": {"entity_id": "java-1", "executable": "/usr/bin/java", "name": "java", "pid": 4242},
        "destination": {"ip": "185.220.101.4", "port": 4444},
    }


def exec_record(ts_ms: int = T0 + 700) -> dict[str, Any]:
    return {
        "timestamp": ts_ms,
        "event": {"id": "x1", "category": ["process"], "action": "exec"},
        "host": {"id": "h1", "os": {"type": "linux"}},
        "process": {
            "entity_id": "bash-1",
            "name": "bash",
            "executable": "/bin/bash",
            "args": ["/bin/bash", "-c", "id"],
            "parent": {
                "entity_id": "java-1",
                "executable": "/usr/bin/java",
                "args": ["/usr/bin/java", "-jar", "a.jar"],
            },
        },
    }


def test_single_object_records_decode_to_ecs_events() -> None:
    raw = encode_single_object(schema("network_event"), connection_record())
    assert raw[:2] == SINGLE_OBJECT_MAGIC
    decoded = decode_record(raw)
    assert isinstance(decoded, Decoded)
    (event,) = decoded.events
    assert isinstance(event, NetworkEvent)
    assert (event.timestamp_ms, event.host_id, event.entity_id, event.destination_ips) == (
        T0,
        "h1",
        "java-1",
        ("185.220.101.4",),
    )
    quoted = orjson.loads(event.raw)  # what alerts quote: the decoded record rendered as JSON
    assert quoted["@timestamp"] == T0 and "user" not in quoted and quoted["destination"]["port"] == 4444


def test_avro_sequence_alerts_like_json() -> None:
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig())
    pipeline.process(encode_single_object(schema("network_event"), connection_record()), 0)
    pipeline.process(encode_single_object(schema("process_event"), exec_record()), 0)
    (alert,) = pipeline.flush(0)
    assert [orjson.loads(orjson.dumps(e))["event"]["id"] for e in alert["detection"]["events"]] == ["c1", "x1"]


def test_a_reader_on_today_s_schema_reads_records_of_an_older_version() -> None:
    older = copy.deepcopy(schema("process_event"))
    process = next(f for f in older["fields"] if f["name"] == "process")["type"][1]
    process["fields"] = [f for f in process["fields"] if f["name"] not in ("env_vars", "working_directory")]
    schemas = AvroSchemas({"network_event": schema("network_event"), "process_event": schema("process_event")})
    record = exec_record()
    raw = encode_single_object(older, record)
    assert isinstance(decode_record(raw, schemas), DecodeError)  # unknown until registered
    schemas.register("process_event", older)
    decoded = decode_record(raw, schemas)
    assert isinstance(decoded, Decoded)
    (event,) = decoded.events
    assert isinstance(event, ProcessEvent) and event.parent_entity_id == "java-1" and event.env_vars == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (SINGLE_OBJECT_MAGIC + b"\x01\x02", "invalid_avro"),
        (SINGLE_OBJECT_MAGIC + b"\x00" * 8 + b"body", "unknown_schema"),
        (b"\x00\x00\x00\x00\x07" + b"avro body", "schema_registry_unsupported"),
    ],
)
def test_bad_avro_records_are_decode_errors(raw: bytes, reason: str) -> None:
    result = decode_record(raw)
    assert isinstance(result, DecodeError) and result.reason == reason


def test_corrupt_and_trailing_bodies_are_invalid() -> None:
    good = encode_single_object(schema("network_event"), connection_record())
    for bad in (good[:-3], good + b"\x00\x01"):
        result = decode_record(bad)
        assert isinstance(result, DecodeError) and result.reason == "invalid_avro", result


def test_shipped_schemas_know_both_event_kinds() -> None:
    assert set(shipped_schemas().readers) == {"network_event", "process_event"}


def confluent_framed(schema_id: int, writer: dict[str, Any], record: dict[str, Any]) -> bytes:
    body = encode_single_object(writer, record)[10:]  # the bare Avro body
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def test_registry_framed_records_resolve_their_writer_schema() -> None:
    registry = {7: fastavro.parse_schema(schema("process_event"))}

    def resolve(schema_id: int) -> Any:
        try:
            return registry[schema_id]
        except KeyError:
            raise LookupError(f"no schema {schema_id}") from None

    decoded = decode_record(confluent_framed(7, schema("process_event"), exec_record()), registry=resolve)
    assert isinstance(decoded, Decoded)
    (event,) = decoded.events
    assert isinstance(event, ProcessEvent) and event.parent_entity_id == "java-1"
    unknown = decode_record(confluent_framed(8, schema("process_event"), exec_record()), registry=resolve)
    assert isinstance(unknown, DecodeError) and unknown.reason == "unknown_schema"
    no_registry = decode_record(confluent_framed(7, schema("process_event"), exec_record()))
    assert isinstance(no_registry, DecodeError) and no_registry.reason == "schema_registry_unsupported"


def test_registry_writer_schema_of_another_record_is_unknown() -> None:
    other = {"type": "record", "name": "Login", "fields": [{"name": "user", "type": "string"}]}
    raw = confluent_framed(3, other, {"user": "x"})
    result = decode_record(raw, registry=lambda _id: fastavro.parse_schema(other))
    assert isinstance(result, DecodeError) and result.reason == "unknown_schema"
