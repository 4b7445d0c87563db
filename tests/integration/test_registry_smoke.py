"""Smoke test for the local schema registry (Apicurio, Confluent-compatible API)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from shellwatch.local.registry import register_schema

_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "process_event.avsc"


def _canonical(schema: str) -> Any:
    return json.loads(schema)


def test_register_and_fetch_process_event_schema(schema_registry_url: str) -> None:
    schema_text = _SCHEMA.read_text()
    schema_id = register_schema(schema_registry_url, "t-value", schema_text)
    assert isinstance(schema_id, int)

    with urllib.request.urlopen(f"{schema_registry_url}/schemas/ids/{schema_id}", timeout=10) as resp:
        assert resp.status == 200
        fetched = json.loads(resp.read())
    assert _canonical(fetched["schema"]) == _canonical(schema_text)

    assert register_schema(schema_registry_url, "t-value", schema_text) == schema_id
