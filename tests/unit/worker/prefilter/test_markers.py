"""The prefilter stage's loop with a scripted consumer: the merge, progress markers, pausing, acknowledgements.

A marker says a source partition was caught up at the fetch that returned at ``shellwatch.as_of``; the
agent trusts it only for hosts whose newest record was written well before that (worker.runtime). Kept
records wait in the record-time merge until every partner partition was read past them or is caught up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import TopicPartition

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.worker.prefilter.stage import PrefilterConfig, _PrefilterStage
from shellwatch.worker.prefilter.stats import PrefilterStats
from tests.unit.builders import T0, conn_doc, exec_doc

NETWORK = TopicPartition("net", 0)
PROCESS = TopicPartition("proc", 0)


@dataclass
class ScriptedConsumer:
    polled_ms: dict[TopicPartition, int | None] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    paused: set[TopicPartition] = field(default_factory=set)

    batches: list[dict[TopicPartition, list[Any]]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    stop: asyncio.Event | None = None

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
        if self.batches:
            return self.batches.pop(0)
        if self.stop is not None:
            self.stop.set()
        return {}

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        self.log.append("commit")
        self.committed.update(offsets or {})

    def pause(self, *tps: TopicPartition) -> None:
        self.paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused.difference_update(tps)

    def assignment(self) -> set[TopicPartition]:
        return {NETWORK, PROCESS}

    def highwater(self, tp: TopicPartition) -> int:
        return 5

    async def position(self, tp: TopicPartition) -> int:
        return self.positions.get(tp, 5)  # default: caught up with what the last fetch said

    def last_poll_timestamp(self, tp: TopicPartition) -> int | None:
        return self.polled_ms.get(tp)


@dataclass
class RecordingProducer:
    sent: list[tuple[str, int, dict[str, bytes]]] = field(default_factory=list)

    async def send(self, topic: str, *, value: bytes, key: Any, partition: int, headers: Any) -> asyncio.Future[Any]:
        self.sent.append((topic, partition, dict(headers)))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def stage_with(
    consumer: ScriptedConsumer, producer: RecordingProducer, max_buffered: int = 20_000, idle_ms: int = 500
) -> _PrefilterStage:
    config = PrefilterConfig(
        max_buffered=max_buffered,
        idle_ms=idle_ms,
        bootstrap_servers="unused:9092",
        source_topics=(("net", ("network",)), ("proc", ("process",))),
        relevant_topic="relevant",
        dead_letter_topic="dead",
        group_id="g",
        marker_interval_ms=0,
    )
    prefilter = ByteScreen.from_patterns(["/usr/lib/jvm/*"], enabled=True)
    return _PrefilterStage(
        config, prefilter=prefilter, stats=PrefilterStats(), consumer=consumer, producer=producer, partitions=1
    )


def markers(producer: RecordingProducer) -> set[bytes]:
    return {headers["shellwatch.source"] for topic, _, headers in producer.sent if "shellwatch.progress" in headers}


def test_markers_say_when_the_fetch_that_found_the_partition_caught_up_returned() -> None:
    async def scenario() -> None:
        consumer = ScriptedConsumer({NETWORK: 1_000_150, PROCESS: 1_000_400})
        producer = RecordingProducer()
        stage = stage_with(consumer, producer)
        await stage._markers(await stage._positions())
        as_of = {headers["shellwatch.source"]: headers["shellwatch.as_of"] for _, _, headers in producer.sent}
        assert as_of == {b"net/0": b"1000150", b"proc/0": b"1000400"}
        kinds = {headers["shellwatch.source"]: headers["shellwatch.progress"] for _, _, headers in producer.sent}
        assert kinds == {b"net/0": b"network", b"proc/0": b"process"}  # the inputs each topic carries

    asyncio.run(scenario())


def test_a_partition_never_fetched_gets_no_marker() -> None:
    async def scenario() -> None:
        producer = RecordingProducer()
        stage = stage_with(ScriptedConsumer({PROCESS: wall_clock_ms()}), producer)
        await stage._markers(await stage._positions())
        assert markers(producer) == {b"proc/0"}

    asyncio.run(scenario())


def test_an_exec_waits_in_the_merge_while_its_partner_lags_and_is_neither_marked_nor_committed() -> None:
    async def scenario() -> None:
        now_ms = wall_clock_ms()
        consumer = ScriptedConsumer({NETWORK: now_ms, PROCESS: now_ms}, positions={NETWORK: 2})  # network lags
        producer = RecordingProducer()
        stage = stage_with(consumer, producer)
        old = now_ms - 60_000
        stage._take_in({NETWORK: [Record("net", 0, 1, old, b"{}")]})
        stage._take_in({PROCESS: [Record("proc", 0, 4, old + 10_000, orjson.dumps(exec_doc(T0)))]})
        await stage._release(await stage._positions())
        assert producer.sent == []  # network was read only up to `old`; its records up to the exec may be unread
        assert stage._stats.buffered == 1
        assert stage._stats.accounted == stage._stats.records == 2
        await stage._markers(await stage._positions())
        assert markers(producer) == set()  # neither: network lags, the exec still waits
        assert await stage._commit_offsets() == {NETWORK: 2, PROCESS: 4}  # not past the waiting exec
        consumer.positions[NETWORK] = 5  # network caught up, as of a fetch answered with the exec's
        await stage._release(await stage._positions())
        assert producer.sent == []  # what was produced with the exec may land on network a moment later
        consumer.polled_ms[NETWORK] = now_ms + 500  # still caught up half a second (idle_ms) later
        await stage._release(await stage._positions())
        assert [topic for topic, _, _ in producer.sent] == ["relevant"]
        assert (stage._stats.forwarded, stage._stats.buffered) == (1, 0)
        assert await stage._commit_offsets() == {NETWORK: 5, PROCESS: 5}

    asyncio.run(scenario())


def test_a_full_merge_buffer_pauses_its_partition_until_it_drains() -> None:
    async def scenario() -> None:
        now_ms = wall_clock_ms()
        consumer = ScriptedConsumer({NETWORK: now_ms, PROCESS: now_ms}, positions={NETWORK: 2})
        stage = stage_with(consumer, RecordingProducer(), max_buffered=2)
        exec_record = orjson.dumps(exec_doc(T0))
        stage._take_in({PROCESS: [Record("proc", 0, n, now_ms, exec_record) for n in range(2)]})
        await stage._release(await stage._positions())
        stage._pause_full()
        assert consumer.paused == {PROCESS}
        consumer.positions[NETWORK] = 5
        consumer.polled_ms[NETWORK] = now_ms + 500
        await stage._release(await stage._positions())
        stage._pause_full()
        assert consumer.paused == set()

    asyncio.run(scenario())


def test_offsets_are_committed_once_per_interval_and_only_after_every_forward_is_acknowledged() -> None:
    async def scenario() -> None:
        consumer = ScriptedConsumer(stop=asyncio.Event())
        exec_record = orjson.dumps(exec_doc(T0))
        consumer.batches = [{PROCESS: [Record("proc", 0, offset, 1, exec_record)]} for offset in range(3)]
        futures: list[asyncio.Future[Any]] = []

        class SlowProducer(RecordingProducer):
            async def send(self, topic: str, **kwargs: Any) -> asyncio.Future[Any]:
                future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                futures.append(future)
                return future

        async def acknowledge_later() -> None:
            await asyncio.sleep(0.05)
            consumer.log.append("acks")
            for future in futures:
                future.set_result(None)

        stage = stage_with(consumer, SlowProducer(), idle_ms=0)  # no idle: a caught-up partner vouches at once
        acks = asyncio.create_task(acknowledge_later())
        await stage.run(consumer.stop)  # type: ignore[arg-type]
        await acks
        assert len(futures) == 3  # the three execs were forwarded at once, none waited for the others
        assert consumer.log == ["acks", "commit"]  # one commit, once the queue ran dry and all were acknowledged

    asyncio.run(scenario())


def test_markers_are_spaced_by_the_injected_clock() -> None:
    async def scenario() -> None:
        now_s = [100.0]
        producer = RecordingProducer()
        config = PrefilterConfig(
            bootstrap_servers="unused:9092",
            source_topics=(("proc", ("process",)),),
            relevant_topic="relevant",
            dead_letter_topic="dead",
            group_id="g",
            marker_interval_ms=250,
        )
        stage = _PrefilterStage(
            config,
            prefilter=ByteScreen.from_patterns(["/usr/lib/jvm/*"], enabled=True),
            stats=PrefilterStats(),
            consumer=ScriptedConsumer({PROCESS: wall_clock_ms()}),
            producer=producer,
            partitions=1,
            clock_s=lambda: now_s[0],
        )
        positions = {PROCESS: (5, 5)}
        sent = []
        for at_s in (100.0, 100.2, 100.25, 100.4, 100.5):
            now_s[0] = at_s
            await stage._markers(positions)
            sent.append(len(producer.sent))
        assert sent == [1, 1, 2, 2, 3]
        assert stage._stats.heartbeat_s == 100.5

    asyncio.run(scenario())


def test_a_backlog_waits_for_a_partner_seen_caught_up_only_before_it_landed_and_no_marker_says_otherwise() -> None:
    """A broker restart: network's backlog (10 s of record time) is fetched at T, when process still counts as
    caught up as of a fetch answered at T; process's own backlog lands 400 ms later."""

    async def scenario() -> None:
        now_ms = wall_clock_ms()
        consumer = ScriptedConsumer({NETWORK: now_ms, PROCESS: now_ms})
        producer = RecordingProducer()
        stage = stage_with(consumer, producer, idle_ms=500)
        conn = orjson.dumps(conn_doc(T0))
        stage._take_in({NETWORK: [Record("net", 0, n, now_ms - 10_000 + n * 2_000, conn) for n in range(5)]})
        for _ in range(2):
            await stage._release(await stage._positions())
            await stage._markers(await stage._positions())
        assert producer.sent == []  # no forward, and no marker of process (nor of network, which waits)
        consumer.polled_ms = {NETWORK: now_ms + 400, PROCESS: now_ms + 400}
        execs = [Record("proc", 0, n, now_ms - 9_000 + n * 2_000, orjson.dumps(exec_doc(T0))) for n in range(5)]
        stage._take_in({PROCESS: execs})
        await stage._release(await stage._positions())
        forwarded = [headers["shellwatch.source"] for _, _, headers in producer.sent]
        # by record time (net n at -10 + 2n s, proc n at -9 + 2n s); the newest exec waits: network is quiet
        assert forwarded == [b"%s/0/%d" % (topic, n) for n in range(5) for topic in (b"net", b"proc")][:-1]
        await stage._markers(await stage._positions())
        assert markers(producer) == set()  # process's newest exec waits, for network: neither may vouch yet
        consumer.polled_ms = {NETWORK: now_ms + 900, PROCESS: now_ms + 900}
        await stage._release(await stage._positions())
        await stage._markers(await stage._positions())
        assert stage._stats.idle_releases == 1 and stage._stats.forwarded == 10
        assert markers(producer) == {b"net/0", b"proc/0"}

    asyncio.run(scenario())


def test_records_released_after_the_last_batch_are_committed() -> None:
    """The idle time releases a record in a later turn of the loop than the batch that brought it: its offset
    is committed then, not only when another batch arrives."""

    async def scenario() -> None:
        now_ms = wall_clock_ms()
        consumer = ScriptedConsumer({NETWORK: now_ms, PROCESS: now_ms}, stop=asyncio.Event())
        consumer.batches = [{PROCESS: [Record("proc", 0, 4, now_ms - 1_000, orjson.dumps(exec_doc(T0)))]}]
        stop = asyncio.Event()

        class Later(ScriptedConsumer):
            async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Any]]:
                if self.batches:
                    return self.batches.pop(0)
                if "commit" in self.log:  # the turn after the batch settled (the exec waiting: offset 4)
                    self.polled_ms = {NETWORK: now_ms + 600, PROCESS: now_ms + 600}  # network still caught up
                if "commit" in self.log and self.committed.get(PROCESS) == 5:
                    stop.set()
                await asyncio.sleep(0.01)
                return {}

        later = Later(consumer.polled_ms, batches=consumer.batches)
        stage = stage_with(later, RecordingProducer())
        await asyncio.wait_for(stage.run(stop), 5)
        assert stage._stats.forwarded == 1
        assert later.committed[PROCESS] == 5

    asyncio.run(scenario())
