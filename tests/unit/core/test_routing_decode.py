"""The pre-filter stage decodes only what routing needs; it must route and dead-letter exactly as a full decode."""

from __future__ import annotations

from pathlib import Path

import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.event_codec import Decoded, DecodeError
from tests.shared import RULE, SHELL_RULE, operator_rules

SCENARIOS = Path(__file__).parents[2] / "replay" / "scenarios"
MALFORMED = [
    b"",
    b"{",
    b"[1]",
    b'{"@timestamp": "yesterday", "event": {"category": ["process"]}}',
    b'{"@timestamp": ["2026-01-01T00:00:00Z", "x"], "event": {"category": "network"}, "host": {"id": ["a", "b"]}}',
    b'{"@timestamp": 1700000000000, "event.category": ["network", "process"], "host.id": 7}',
    b'{"event": {"category": ["file"]}, "host": {"id": "h"}}',
]


def _routing(decoded: Decoded | DecodeError) -> object:
    if isinstance(decoded, DecodeError):
        return decoded
    return [(e.kind, e.host_id, e.timestamp_ms, e.raw, e.replayed) for e in decoded.events]


@pytest.mark.parametrize("with_rules", [False, True], ids=["bundled", "file-rule"])
def test_the_routing_decode_routes_and_fails_as_the_full_decode(tmp_path: Path, with_rules: bool) -> None:
    rules = operator_rules(tmp_path, ("execution_cupsd_foomatic_rip_file_creation.toml",)) if with_rules else ()
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE, rules=rules)
    records = [line for path in sorted(SCENARIOS.glob("*/events.ndjson")) for line in path.read_bytes().splitlines()]
    assert len(records) > 100
    for raw in [*records, *MALFORMED]:
        assert _routing(pipeline.decode_for_routing(raw)) == _routing(pipeline.decode(raw)), raw[:200]
