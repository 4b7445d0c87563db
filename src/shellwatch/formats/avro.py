"""Avro input per ``schemas/``: Avro's single-object encoding (no registry needed).

A record is ``C3 01`` + the 8-byte CRC-64-AVRO fingerprint of its writer schema + the binary body.
Writer schemas are known by fingerprint (the shipped ones, plus any an operator registers, so records
written with an older version still read with today's schema: Avro schema resolution). The decoded
record becomes the ECS document it describes (``timestamp`` is ``@timestamp``, epoch milliseconds;
absent optional fields are left out), and that document, rendered as JSON, is what alerts quote.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

import fastavro
import orjson
from fastavro.schema import fingerprint, to_parsing_canonical_form

from shellwatch.errors import AvroDecodeError

__all__ = ["SINGLE_OBJECT_MAGIC", "AvroDecodeError", "AvroSchemas", "encode_single_object", "shipped_schemas"]

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_HEADER = len(SINGLE_OBJECT_MAGIC) + 8


def _fingerprint(schema: Any) -> bytes:
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


class AvroSchemas:
    """Reader schemas by record name, writer schemas by fingerprint."""

    def __init__(self, readers: Mapping[str, Any]) -> None:
        self.readers = {name: fastavro.parse_schema(schema) for name, schema in readers.items()}
        self.writers: dict[bytes, tuple[str, Any]] = {}
        self._by_record_name: dict[str, Any] = {
            str(schema["name"]).rsplit(".", 1)[-1]: schema
            for schema in self.readers.values()
            if isinstance(schema, dict)
        }
        for name, schema in self.readers.items():
            self.register(name, schema)

    def register(self, name: str, writer_schema: Any) -> bytes:
        """Accept records written with ``writer_schema`` (an older version of reader ``name``)."""
        parsed = fastavro.parse_schema(writer_schema)
        key = _fingerprint(parsed)
        self.writers[key] = (name, parsed)
        return key

    def decode(self, raw: bytes) -> dict[str, Any]:
        """The ECS document of one single-object-encoded record; raises :class:`AvroDecodeError`."""
        if len(raw) < _HEADER:
            raise AvroDecodeError("invalid_avro", f"Avro single-object record of {len(raw)} bytes is truncated")
        writer = self.writers.get(raw[2:_HEADER])
        if writer is None:
            raise AvroDecodeError("unknown_schema", f"no known Avro schema has fingerprint {raw[2:_HEADER].hex()}")
        name, writer_schema = writer
        return self._read(raw[_HEADER:], writer_schema, self.readers[name])

    def decode_body(self, body: bytes, writer_schema: Any) -> dict[str, Any]:
        """The ECS document of a bare Avro body written with ``writer_schema`` (e.g. from a registry),
        read with the shipped reader schema of the same record name."""
        name = writer_schema.get("name") if isinstance(writer_schema, dict) else None
        reader = self._by_record_name.get(str(name).rsplit(".", 1)[-1])
        if reader is None:
            raise AvroDecodeError("unknown_schema", f"writer schema {name!r} is not a network or process event")
        return self._read(body, writer_schema, reader)

    @staticmethod
    def _read(body: bytes, writer_schema: Any, reader_schema: Any) -> dict[str, Any]:
        stream = io.BytesIO(body)
        try:
            record = fastavro.schemaless_reader(stream, writer_schema, reader_schema)
        except Exception as exc:  # fastavro raises many types for corrupt bodies
            raise AvroDecodeError("invalid_avro", f"corrupt Avro body: {type(exc).__name__}: {exc}") from None
        if stream.tell() != len(body):
            raise AvroDecodeError("invalid_avro", f"{len(body) - stream.tell()} trailing bytes after the record")
        if not isinstance(record, dict):
            raise AvroDecodeError("invalid_avro", "the record is not an Avro record")
        return _ecs_document(record)

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of ``record`` with the current schema ``name``."""
        return encode_single_object(self.readers[name], record)


def encode_single_object(schema: Any, record: Mapping[str, Any]) -> bytes:
    parsed = fastavro.parse_schema(schema)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed, dict(record))
    return SINGLE_OBJECT_MAGIC + _fingerprint(parsed) + body.getvalue()


def _ecs_document(record: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = _without_nulls(record)
    stamp = doc.pop("timestamp", None)
    if isinstance(stamp, datetime):
        doc["@timestamp"] = int(stamp.timestamp() * 1000)
    elif stamp is not None:
        doc["@timestamp"] = stamp
    return doc


def _without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node


@lru_cache(maxsize=1)
def shipped_schemas() -> AvroSchemas:
    """The input schemas shipped in ``schemas/`` (read once)."""
    folder = resources.files("shellwatch.schemas")
    readers = {
        name: json.loads(folder.joinpath(f"{name}.avsc").read_text()) for name in ("network_event", "process_event")
    }
    return AvroSchemas(readers)


def render(doc: Mapping[str, Any]) -> bytes:
    return orjson.dumps(doc)
