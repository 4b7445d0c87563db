"""The correlation agent reads the clocks it is given: detection time, detection latency, stage timing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.timestamps import format_rfc3339_ms
from shellwatch.kafka.headers import BROKER_TS_HEADER, PROGRESS_HEADER
from shellwatch.worker.app import _Outputs, _RecordHandler
from shellwatch.worker.runtime import CorrelationRuntime
from shellwatch.worker.stage_stats import CorrelateStats
from tests.shared import RULE, DictStore
from tests.unit.builders import T0, conn_doc, exec_doc

NOW_MS = T0 + 60_000


@dataclass(frozen=True)
class Message:
    value: bytes
    headers: list[tuple[str, bytes]]
    offset: int
    topic: str = "relevant"
    partition: int = 0
    key: bytes | None = None


@dataclass
class Topic:
    sent: list[bytes] = field(default_factory=list)

    async def send(self, *, key: bytes | None, value: bytes, force: bool, **_: Any) -> asyncio.Future[None]:
        self.sent.append(value)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_agent_uses_the_injected_clocks() -> None:
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig()), DictStore())
    stats, alerts = CorrelateStats(), Topic()
    outputs = _Outputs(alerts, Topic(), "json", stats, runtime.record_times, clock_ms=lambda: NOW_MS)
    handle = _RecordHandler(runtime, outputs, stats, lambda: {0}, clock_ms=lambda: NOW_MS, clock_s=lambda: 42.0)
    exec_broker_ms = T0 + 1_010
    records = [
        Message(orjson.dumps(conn_doc(T0)), [(BROKER_TS_HEADER, str(T0 + 10).encode())], 0),
        Message(orjson.dumps(exec_doc(T0 + 1_000)), [(BROKER_TS_HEADER, str(exec_broker_ms).encode())], 1),
        Message(b"", [(PROGRESS_HEADER, b"network")], 2),
    ]

    async def scenario() -> None:
        for message in records:
            await handle(message)

    asyncio.run(scenario())
    (alert,) = [orjson.loads(raw) for raw in alerts.sent]
    assert alert["@timestamp"] == format_rfc3339_ms(NOW_MS)
    assert stats.latency.count == 1 and stats.latency.sum_s == (NOW_MS - exec_broker_ms) / 1000
    assert stats.records == 3 and stats.last_done_s == 42.0
