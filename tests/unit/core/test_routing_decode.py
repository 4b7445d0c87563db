"""The pre-filter stage decodes only what routing needs; it must route and dead-letter exactly as a full decode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.avro import SINGLE_OBJECT_MAGIC, shipped_schemas
from shellwatch.formats.event_codec import Decoded, DecodeError, Routing
from tests.shared import RULE, SHELL_RULE, operator_rules
from tests.unit.builders import T0, conn_doc, exec_doc
from tests.unit.formats.test_avro_input import connection_record, exec_record

SCENARIOS = Path(__file__).parents[2] / "replay" / "scenarios"
MALFORMED = [
    b"",
    b"{",
    b"[1]",
    b'{"@timestamp": "yesterday", "event": {"category": ["process"]}}',
    b'{"@timestamp": ["2026-01-01T00:00:00Z", "x"], "event": {"category": "network"}, "host": {"id": ["a", "b"]}}',
    b'{"@timestamp": 1700000000000, "event.category": ["network", "process"], "host.id": 7}',
    b'{"event": {"category": ["file"]}, "host": {"id": "h"}}',
    b'{"event": {"category": ["process", "file", "network"]}, "host": {"id": "h"}, "@timestamp": "2026-01-01T00:00Z"}',
    b'{"event": {"category": "authentication"}, "host.id": ["h", "h"], "@timestamp": "2026-01-01T00:00:00.123Z"}',
    b'{"@timestamp": null, "event": {"category": ["network"]}, "host": {"id": null}}',
]

# an unknown schema fingerprint, a truncated body, and registry framing without a registry
AVRO_MALFORMED = [SINGLE_OBJECT_MAGIC + bytes(8) + b"x", SINGLE_OBJECT_MAGIC, b"\x00\x00\x00\x00\x07{}"]


def _routing(decoded: Decoded | DecodeError) -> Routing | DecodeError:
    """How the stage would route a full decode: its events' kinds in order, and (the events of one document
    share them) their host and time."""
    if isinstance(decoded, DecodeError):
        return decoded
    events = decoded.events
    hosts = {e.host_id for e in events}
    times = {e.timestamp_ms for e in events}
    assert len(hosts) <= 1 and len(times) <= 1
    return Routing(
        tuple(e.kind for e in events), next(iter(hosts)) if hosts else None, next(iter(times)) if times else None
    )


@pytest.mark.parametrize("with_rules", [False, True], ids=["bundled", "file-rule"])
def test_the_routing_decode_routes_and_fails_as_the_full_decode(tmp_path: Path, with_rules: bool) -> None:
    rules = operator_rules(tmp_path, ("execution_cupsd_foomatic_rip_file_creation.toml",)) if with_rules else ()
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE, rules=rules)
    records = [line for path in sorted(SCENARIOS.glob("*/events.ndjson")) for line in path.read_bytes().splitlines()]
    assert len(records) > 100
    schemas = shipped_schemas()
    avro = [schemas.encode("network_event", connection_record()), schemas.encode("process_event", exec_record())]
    for raw in [*records, *MALFORMED, *avro, *AVRO_MALFORMED]:
        routing = pipeline.decode_for_routing(raw)
        full = _routing(pipeline.decode(raw))
        if isinstance(full, Routing) and not full.kinds:  # a document of no input: nothing routes by its fields
            assert isinstance(routing, Routing) and not routing.kinds, raw[:200]
        else:
            assert isinstance(routing, DecodeError) == isinstance(full, DecodeError), raw[:200]
            if isinstance(routing, Routing) and isinstance(full, Routing):
                assert (routing.kinds, routing.host_id, routing.timestamp_ms) == (
                    full.kinds,
                    full.host_id,
                    full.timestamp_ms,
                )
                assert routing.relevant or not with_rules, raw[:200]  # an operator's rule may read any event
            else:
                assert routing == full, raw[:200]


def _alerts(pipeline: Pipeline, records: list[bytes]) -> list[tuple[str, str | None]]:
    alerts = []
    for raw in records:
        alerts += pipeline.process(raw, 0).alerts
    alerts += pipeline.flush(0)
    return sorted((alert["event"]["id"], alert.get("detection", {}).get("case")) for alert in alerts)


@pytest.mark.parametrize("scenario", sorted(p.parent.name for p in SCENARIOS.glob("*/events.ndjson")))
def test_dropping_the_records_no_rule_can_match_changes_no_alert(scenario: str) -> None:
    # the bundled rules' check in the routing decode: what it drops never decides an alert, whatever the order
    records = (SCENARIOS / scenario / "events.ndjson").read_bytes().splitlines()
    router = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    kept = [
        raw for raw in records if not isinstance(routed := router.decode_for_routing(raw), Routing) or routed.relevant
    ]
    everything = _alerts(Pipeline(RULE, PipelineConfig(), SHELL_RULE), records)
    assert _alerts(Pipeline(RULE, PipelineConfig(), SHELL_RULE), kept) == everything


def test_the_routing_check_drops_what_no_bundled_rule_matches() -> None:
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    records = [line for path in sorted(SCENARIOS.glob("*/events.ndjson")) for line in path.read_bytes().splitlines()]
    routed = [r for r in map(pipeline.decode_for_routing, records) if isinstance(r, Routing) and r.kinds]
    assert 0 < sum(not r.relevant for r in routed) < len(routed)
    private = conn_doc(ip="10.1.2.3")
    public = conn_doc(ip="8.8.8.8")
    assert [_relevant(pipeline, doc) for doc in (private, public)] == [False, True]
    shell, java_child = exec_doc(T0), exec_doc(T0)
    java_child["process"].update(name="java", executable="/usr/bin/java", args=["/usr/bin/java", "-version"])
    java_child["process"]["command_line"] = "/usr/bin/java -version"
    assert [_relevant(pipeline, doc) for doc in (shell, java_child)] == [True, False]
    # the shell rule alone still wants a Java parent's shell; the sequence rule alone still wants the connection
    assert _relevant(Pipeline(RULE, PipelineConfig()), shell)  # the sequence rule's second stage
    off = Pipeline(RULE, PipelineConfig(prefilter_enabled=False), SHELL_RULE)
    assert _relevant(off, private) and _relevant(off, java_child)  # the pre-filter off: everything goes on


def _relevant(pipeline: Pipeline, doc: dict[str, Any]) -> bool:
    routed = pipeline.decode_for_routing(orjson.dumps(doc))
    assert isinstance(routed, Routing)
    return routed.relevant
