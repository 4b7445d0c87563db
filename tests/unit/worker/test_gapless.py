"""A contiguous topic's records reach the agent in offset order, never past a missing one (the Faust rebalance race).

The fetches are scripted after sequences seen in SIGKILL runs (partition 0 re-read from its committed offset
1572 after a rebalance, 1572-1725 fetched, then records from where the previous generation's prefetch had
left the position, 2712 onwards, arrive behind them). The seek callback stands in for the consumer's seek.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.types import ConsumerMessage

from shellwatch.worker.gapless import ContiguousOffsets, GaplessConsumer, GaplessTransport, Refetch, in_offset_order

TOPIC = "app-relevant"


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Message:
    offset: int


async def _records(pairs: Iterable[tuple[TP, int]]) -> AsyncIterator[tuple[TP, Message]]:
    for tp, offset in pairs:
        yield tp, Message(offset)


class Seeker:
    def __init__(self, offsets: ContiguousOffsets, *, retention_start: int = 0) -> None:
        self.offsets = offsets
        self.retention_start = retention_start
        self.calls: list[Refetch] = []

    async def __call__(self, tp: TP, refetch: Refetch) -> bool:
        self.calls.append(refetch)
        if refetch.expected < self.retention_start:
            self.offsets.accept(refetch)
            return False
        self.offsets.seeked(tp.topic, tp.partition, refetch.expected)
        return True


def _fetch(offsets: ContiguousOffsets, seeker: Seeker, pairs: Iterable[tuple[TP, int]]) -> list[tuple[TP, int]]:
    async def run() -> list[tuple[TP, int]]:
        return [(tp, m.offset) async for tp, m in in_offset_order(_records(pairs), offsets, seeker)]

    return asyncio.run(run())


P0, P1 = TP(TOPIC, 0), TP(TOPIC, 1)


def test_records_fetched_before_a_rebalance_never_jump_ahead_of_the_re_read_ones() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    offsets.seeked(TOPIC, 0, 1572)  # the committed offset, after the rebalance
    first = _fetch(offsets, seeker, [(P0, o) for o in range(1572, 1726)])
    assert [o for _, o in first] == list(range(1572, 1726))

    stale = [(P0, 2712), (P1, 40), (P0, 2713), (P1, 41), (P0, 2714)]
    assert _fetch(offsets, seeker, stale) == [(P1, 40), (P1, 41)]  # the other partition goes on
    assert seeker.calls == [Refetch(TOPIC, 0, 1726, 2712)]
    assert offsets.expected(TOPIC, 0) == 1726

    again = _fetch(offsets, seeker, [(P0, o) for o in range(1726, 2716)])
    assert [o for _, o in again] == list(range(1726, 2716))  # every skipped record, in order
    assert len(seeker.calls) == 1


def test_a_stale_record_after_the_seek_back_seeks_back_again() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    offsets.seeked(TOPIC, 0, 100)
    assert _fetch(offsets, seeker, [(P0, 100), (P0, 105)]) == [(P0, 100)]
    assert _fetch(offsets, seeker, [(P0, 106), (P0, 101), (P0, 102)]) == []
    assert [c.expected for c in seeker.calls] == [101, 101]
    assert _fetch(offsets, seeker, [(P0, 101), (P0, 102)]) == [(P0, 101), (P0, 102)]


def test_records_at_or_below_the_position_pass_and_do_not_move_it_back() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    offsets.seeked(TOPIC, 0, 10)
    assert _fetch(offsets, seeker, [(P0, 10), (P0, 11), (P0, 5), (P0, 12)]) == [(P0, 10), (P0, 11), (P0, 5), (P0, 12)]
    assert offsets.expected(TOPIC, 0) == 13
    assert seeker.calls == []


def test_an_unknown_position_takes_the_first_record_as_it_comes() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    assert _fetch(offsets, seeker, [(P0, 500), (P0, 501)]) == [(P0, 500), (P0, 501)]
    offsets.seeked(TOPIC, 0, None)  # no committed offset: wherever the consumer starts
    assert _fetch(offsets, seeker, [(P0, 900)]) == [(P0, 900)]
    assert seeker.calls == []


def test_nothing_is_handed_on_between_a_rebalance_and_the_seek_to_the_committed_offset() -> None:
    """Seen in a SIGKILL run: Faust resumes a kept partition, then awaits the committed offsets; meanwhile
    its fetch loop delivered relevant[2]@1073 from where the previous generation's prefetch had left the
    position, before 854-1072 were re-read (newer records of a host applied before older ones, which
    idempotent replay then skips); and relevant[0]@1087 arrived just after the seek to 397."""
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    p2 = TP(TOPIC, 2)
    offsets.seeked(TOPIC, 2, 1000)
    assert _fetch(offsets, seeker, [(p2, 1000)]) == [(p2, 1000)]
    offsets.rebalanced([(TOPIC, 0), (TOPIC, 2)])  # revoked, then assigned again
    assert _fetch(offsets, seeker, [(p2, 1073), (p2, 1074), (P0, 1087)]) == []
    assert offsets.held == 3
    offsets.seeked(TOPIC, 2, 854)
    offsets.seeked(TOPIC, 0, 397)
    assert _fetch(offsets, seeker, [(P0, 1088), (p2, 854), (p2, 855)]) == [(p2, 854), (p2, 855)]
    assert seeker.calls == [Refetch(TOPIC, 0, 397, 1088)]
    assert _fetch(offsets, seeker, [(P0, 397), (P0, 398)]) == [(P0, 397), (P0, 398)]


def test_a_skip_that_retention_explains_is_accepted() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets, retention_start=50)
    offsets.seeked(TOPIC, 0, 10)  # committed long ago; the log now starts at 50
    assert _fetch(offsets, seeker, [(P0, 50), (P0, 51)]) == [(P0, 50), (P0, 51)]
    assert offsets.expected(TOPIC, 0) == 52
    assert len(seeker.calls) == 1


def test_other_topics_are_not_watched() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    other = TP("app-sequence-state-changelog", 0)
    offsets.seeked(other.topic, 0, 10)
    assert _fetch(offsets, seeker, [(other, 10), (other, 20)]) == [(other, 10), (other, 20)]
    assert seeker.calls == []


def test_only_the_record_next_in_order_is_reported_as_next() -> None:
    offsets = ContiguousOffsets([TOPIC])
    seeker = Seeker(offsets)
    offsets.seeked(TOPIC, 0, 10)
    nexts: list[int] = []

    async def run() -> list[int]:
        pairs = [(P0, 10), (P0, 11), (P0, 9), (P0, 12)]
        records = in_offset_order(_records(pairs), offsets, seeker, lambda tp, offset: nexts.append(offset))
        return [m.offset async for _, m in records]

    assert asyncio.run(run()) == [10, 11, 9, 12]
    assert nexts == [10, 11, 12]  # 9 is behind: Faust's fetch loop rightly drops it as read already


def _app_consumer(relevant: str) -> Any:
    app = faust.App("gapless-test", broker="kafka://127.0.0.1:1", env={}, env_prefix="SHELLWATCH_FAUST_")
    app.transport = GaplessTransport(app.conf.broker_consumer, app, contiguous_topics=[relevant])
    app.topics.acking_topics.add(relevant)
    return app.consumer


def _message(topic: str, offset: int, generation_id: int) -> ConsumerMessage:
    return ConsumerMessage(
        topic, 0, offset, 0.0, 0, [], b"k", b"v", None, 1, 1, TopicPartition(topic, 0), generation_id=generation_id
    )


def test_the_faust_consumer_is_gapless_for_the_relevant_topic_and_ignores_stale_acks() -> None:
    """Faust acks the records of an earlier generation that a stream skips; for the relevant topic such an ack
    would count a record this generation has not processed, so the consumer does not record it."""
    consumer = _app_consumer(TOPIC)
    assert isinstance(consumer, GaplessConsumer)
    assert consumer.contiguous.topics == {TOPIC}
    consumer.app.consumer_generation_id = 7
    assert not consumer.ack(_message(TOPIC, 2712, generation_id=6))
    assert consumer.ack(_message(TOPIC, 1572, generation_id=7))
    assert dict(consumer._acked) == {TopicPartition(TOPIC, 0): [1572]}
    consumer._thread.thread_loop.close()  # never started: its loop is closed here
