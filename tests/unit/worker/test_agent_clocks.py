"""The correlation agent reads the clocks it is given: detection time, detection latency, stage timing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.timestamps import format_rfc3339_ms
from shellwatch.kafka.headers import BROKER_TS_HEADER, PROGRESS_HEADER
from shellwatch.worker.app import _before_commit, _Outputs, _RecordHandler, hand_over_changelog
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


class StallingBuffer:
    """Faust's producer buffer as the commit path meets it: ``flush_atmost`` gives up after a stall."""

    def __init__(self, size: int, stalls: int) -> None:
        self.size, self.stalls, self.state, self.calls = size, stalls, "running", 0

    async def flush_atmost(self, max_messages: int | None) -> int:
        self.calls += 1
        if self.stalls:
            self.stalls -= 1
            return 0  # the 0.1 s wait passed without a message sent
        sent, self.size = self.size, 0
        return sent


def test_the_changelog_is_handed_over_in_full_even_when_a_flush_gives_up() -> None:
    buffer = StallingBuffer(size=3, stalls=2)
    asyncio.run(hand_over_changelog(buffer))
    assert (buffer.size, buffer.calls) == (0, 3)
    idle = StallingBuffer(size=0, stalls=0)
    asyncio.run(hand_over_changelog(idle))
    assert idle.calls == 0
    stopped = StallingBuffer(size=2, stalls=5)
    stopped.state = "stopping"
    asyncio.run(hand_over_changelog(stopped))  # returns: a stopping buffer is not waited for
    assert stopped.calls == 0


@dataclass
class AckingTopic:
    """An alerts topic whose broker acknowledges only when the test says so; ``fail`` makes the first
    delivery of a value fail with that error."""

    sent: list[bytes] = field(default_factory=list)
    futures: list[asyncio.Future[None]] = field(default_factory=list)
    fail: dict[bytes, Exception] = field(default_factory=dict)

    async def send(self, *, key: bytes | None, value: bytes, force: bool, **_: Any) -> asyncio.Future[None]:
        self.sent.append(value)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        error = self.fail.pop(value, None)
        if error is not None:
            future.set_exception(error)
        self.futures.append(future)
        return future

    def acknowledge(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_result(None)


def _alert(n: int) -> dict[str, Any]:
    return {"host": {"id": "host-a"}, "event": {"id": f"alert-{n}"}, "rule": {"id": "r"}}


def test_alerts_are_acknowledged_before_a_commit_not_before_the_next_record() -> None:
    stats, alerts = CorrelateStats(), AckingTopic()
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig()), DictStore())
    outputs = _Outputs(alerts, Topic(), "json", stats, runtime.record_times, clock_ms=lambda: NOW_MS)

    async def scenario() -> None:
        await outputs.deliver([_alert(1), _alert(2)])  # returns with both unacknowledged
        assert outputs.in_flight == 2 and not any(f.done() for f in alerts.futures)
        settling = asyncio.ensure_future(outputs.settle())
        await asyncio.sleep(0.01)
        assert not settling.done()  # a commit waits for the broker
        alerts.acknowledge()
        await asyncio.wait_for(settling, 1)
        assert outputs.in_flight == 0

    asyncio.run(scenario())
    assert len(alerts.sent) == 2


def test_a_commit_waits_for_the_state_writes_and_the_alerts_not_each_record() -> None:
    """The agent goes on with the next record while its state writes sit in Faust's buffer; before the consumer
    commits, the buffer is handed to the producer in full (a flush that gives up is tried again) and the
    alerts are acknowledged."""
    stats, alerts = CorrelateStats(), AckingTopic()
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig()), DictStore())
    outputs = _Outputs(alerts, Topic(), "json", stats, runtime.record_times, clock_ms=lambda: NOW_MS)
    buffer = StallingBuffer(size=4, stalls=1)

    @dataclass
    class App:
        producer: Any

    @dataclass
    class Producer:
        buffer: StallingBuffer

    before_commit = _before_commit(App(Producer(buffer)), outputs)  # type: ignore[arg-type]

    async def scenario() -> None:
        await outputs.deliver([_alert(1)])
        committing = asyncio.ensure_future(before_commit())
        await asyncio.sleep(0.01)
        assert buffer.size == 0 and buffer.calls == 2  # handed over, past the flush that gave up
        assert not committing.done()  # the alert is not acknowledged yet
        alerts.acknowledge()
        await asyncio.wait_for(committing, 1)

    asyncio.run(scenario())


def test_an_alert_whose_delivery_failed_is_sent_again_before_the_commit() -> None:
    stats, alerts, dead = CorrelateStats(), AckingTopic(), Topic()
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig()), DictStore())
    outputs = _Outputs(alerts, dead, "json", stats, runtime.record_times, clock_ms=lambda: NOW_MS)

    async def scenario() -> None:
        await outputs.deliver([_alert(1)])
        alerts.fail[alerts.sent[0]] = KafkaTimeoutError()
        await outputs.deliver([_alert(1)])  # the same bytes: its first delivery fails
        settling = asyncio.ensure_future(outputs.settle())
        for _ in range(20):
            alerts.acknowledge()
            await asyncio.sleep(0.005)
        await asyncio.wait_for(settling, 1)

    asyncio.run(scenario())
    assert len(alerts.sent) == 3 and alerts.sent[2] == alerts.sent[0]  # the failed one went out again
    assert all(f.done() for f in alerts.futures) and dead.sent == []


def test_an_alert_that_can_never_be_delivered_dead_letters_its_record() -> None:
    stats, alerts, dead = CorrelateStats(), AckingTopic(), Topic()
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig()), DictStore())
    outputs = _Outputs(alerts, dead, "json", stats, runtime.record_times, clock_ms=lambda: NOW_MS)
    cause = Message(b'{"raw": 1}', [], 7)

    class TooLarge(AckingTopic):
        async def send(self, *, key: bytes | None, value: bytes, force: bool, **_: Any) -> asyncio.Future[None]:
            future = await super().send(key=key, value=value, force=force)
            if not future.done():
                future.set_exception(MessageSizeTooLargeError())
            return future

    outputs.alerts_topic = TooLarge()

    async def scenario() -> None:
        await outputs.deliver([_alert(1)], cause)
        await asyncio.wait_for(outputs.settle(), 1)

    asyncio.run(scenario())
    assert dead.sent == [b'{"raw": 1}'] and stats.dead_letters == {"MessageSizeTooLargeError": 1}
