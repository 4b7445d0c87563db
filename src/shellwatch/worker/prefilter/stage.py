"""Stage 1 of the worker: a batched bare-aiokafka loop that forwards only the records a rule could match.

About 98% of endpoint events involve no Java. A Faust agent costs ~70 µs per event, a ``getmany`` loop a
few µs, so this loop reads the raw source topics and hands the Faust agent (stage 2) only what matters:

- the pre-filter rejects a record: counted, not decoded;
- it passes but cannot be decoded: dead-lettered (original key, value and headers plus the
  ``__connect.errors.*`` headers, see :mod:`shellwatch.kafka.dead_letters`);
- it decodes to an event of an input (network, process, or a category an operator's rule reads): its original
  bytes go ONCE to the relevant topic, keyed
  by ``host.id``, in the source partition when the input was keyed by ``host.id`` (co-partitioned), else
  in the Java partitioner's choice for ``host.id`` (repartitioning unkeyed or wrongly keyed input);
- it decodes to no input's event: counted as ``other_category``;
- it decodes to events no loaded rule can match (``Routing.relevant`` False, see
  :meth:`~shellwatch.core.pipeline.Pipeline.decode_for_routing`): counted as ``no_match`` at once, not merged.

Kept records are not routed as they are fetched: they wait in a record-time merge of every assigned source
partition (:mod:`~shellwatch.worker.prefilter.alignment`), so one topic's fetch never runs ahead of its
partner's, and are routed as the merge releases them.

Delivery is at-least-once: every ``commit_interval_ms`` (or when idle) every produce is awaited, and only
then are offsets committed, each up to the first record still waiting in the merge. A failed produce raises
out of :func:`run_prefilter_stage` without committing (the caller restarts it, and it reads again from the
committed offsets). Its clients wait ``retry_backoff_ms`` between retries; closing them is bounded, so a stage
failing while no broker answers can be started again.

Progress markers: each assigned source partition that is caught up (position at the highwater) and has
nothing waiting in the merge gets, at most every ``marker_interval_ms``, an empty record in the
same-numbered relevant partition with the header ``shellwatch.progress`` (the source's kinds) so stage 2 can
release events it holds while waiting for the other stream. It follows the partition's forwards, and is held
back while the merge would not yet let that partition vouch for a partner's waiting record (``idle_ms``).
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.formats.event_codec import DecodeError, Router, Routing, route_record
from shellwatch.kafka.admin import check_partitions, require_copartitioned
from shellwatch.kafka.dead_letters import dead_letter_headers
from shellwatch.kafka.group_join import install_single_join_group
from shellwatch.kafka.headers import REASON_HEADER
from shellwatch.kafka.security import KafkaSecurity, aiokafka_kwargs
from shellwatch.worker.prefilter.alignment import Alignment, Span
from shellwatch.worker.prefilter.routing import (
    SourceKinds,
    forward_headers,
    forward_target,
    marker_headers,
)
from shellwatch.worker.prefilter.stats import AssignmentListener, PrefilterStats

__all__ = [
    "PrefilterConfig",
    "PrefilterStats",
    "SourceKinds",
    "run_prefilter_stage",
]

log = logging.getLogger("shellwatch.prefilter")

MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
_timestamp = operator.attrgetter("timestamp")


@dataclass(frozen=True, slots=True)
class PrefilterConfig:
    bootstrap_servers: str
    source_topics: tuple[tuple[str, SourceKinds], ...]  # (topic, the inputs it carries)
    relevant_topic: str
    dead_letter_topic: str
    group_id: str
    marker_interval_ms: int = 250
    max_batch: int = 10_000
    poll_timeout_ms: int = 100
    # the longest a fetch waits at the broker for data: how old a quiet partition's "caught up" gets, so how far
    # past idle_ms a record waits for a quiet partner (aiokafka's default is 500)
    fetch_max_wait_ms: int = 100
    far_future_ms: int = 300_000  # @timestamp this far past the broker timestamp counts as far_future
    # kept records waiting in the record-time merge (see alignment), per source partition, before it is paused
    max_buffered: int = 20_000
    # a caught-up partner with nothing buffered vouches for a record only once a fetch answered this long after
    # that record's still finds it caught up (KIP-695's max.task.idle.ms; see alignment)
    idle_ms: int = 500
    max_partition_fetch_bytes: int = 1_048_576
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_500
    commit_interval_ms: int = 500  # produce acks awaited and offsets committed this often (and when idle)
    retry_backoff_ms: int = 500  # the consumer's, producer's and admin client's wait before a retry
    close_timeout_s: float = 10.0  # per client, when the stage ends
    max_unacked: int = 20_000  # ... or once this many produces are unacknowledged
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # for every aiokafka client (repr masked)

    def __post_init__(self) -> None:
        names = [name for name, _ in self.source_topics]
        if not names:
            raise ValueError("source_topics: at least one source topic is required")
        if len(set(names)) != len(names):
            raise ValueError(f"source_topics: a topic is listed twice: {names}")
        for name, kinds in self.source_topics:
            if not kinds or any(not k or "," in k or k != k.strip() for k in kinds):
                raise ValueError(f"source_topics: {name!r} needs one or more input names without commas, got {kinds!r}")
        outputs = {self.relevant_topic, self.dead_letter_topic}
        if len(outputs) != 2 or outputs & set(names):
            raise ValueError("relevant_topic, dead_letter_topic and the source topics must all differ")
        delays = (
            self.marker_interval_ms,
            self.poll_timeout_ms,
            self.far_future_ms,
            self.idle_ms,
            self.fetch_max_wait_ms,
        )
        if min(*delays, self.commit_interval_ms) < 0:
            raise ValueError(
                "marker_interval_ms, poll_timeout_ms, far_future_ms, idle_ms, fetch_max_wait_ms and "
                "commit_interval_ms must not be negative"
            )
        if min(self.max_batch, self.max_unacked, self.max_buffered) < 1:
            raise ValueError(
                f"max_batch, max_unacked and max_buffered must be positive, got "
                f"{self.max_batch}, {self.max_unacked}, {self.max_buffered}"
            )


class _PrefilterStage:
    def __init__(
        self,
        config: PrefilterConfig,
        *,
        prefilter: ByteScreen,
        stats: PrefilterStats,
        consumer: Any,
        producer: Any,
        partitions: int,
        decode: Router = route_record,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._decode = decode
        self._clock_s = clock_s  # monotonic seconds: commit and marker intervals, heartbeat, last record
        self._config = config
        self._prefilter = prefilter
        self._stats = stats
        self._consumer = consumer
        self._producer = producer
        self._partitions = partitions
        self._kinds = dict(config.source_topics)
        self._last_marker: dict[Any, float] = {}
        # (topic, partition) -> records
        self._alignment: Alignment[Any, Any] = Alignment(config.max_buffered, config.idle_ms)
        self._paused: set[Any] = set()
        self._lag: dict[Any, int | None] = {}  # per assigned (topic, partition), as the merge last saw it
        self._polled: dict[Any, int] = {}  # per assigned (topic, partition): when the fetch giving its lag returned

    async def run(self, stop: asyncio.Event) -> None:
        """Route batches until ``stop``; acknowledge and commit every ``commit_interval_ms`` (or when idle).

        Produce acknowledgements are awaited only before a commit: waiting for them after every batch
        would stall the loop for a linger and a round trip per batch. Kept records go through the record-time
        merge of every assigned partition (:mod:`~shellwatch.worker.prefilter.alignment`) and are routed as soon
        as it releases them, so latency does not depend on the commit interval.
        """
        config, consumer, stats = self._config, self._consumer, self._stats
        pending: list[asyncio.Future[Any]] = []
        uncommitted = False
        settled_s = self._clock_s()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=config.poll_timeout_ms, max_records=config.max_batch)
            if batch:
                self._take_in(batch)
                stats.batches += 1
                uncommitted = True
            positions = await self._positions()
            aligned = stats.aligned
            pending += await self._release(positions)
            uncommitted = uncommitted or stats.aligned != aligned  # a release moves the offsets to commit on
            pending += await self._markers(positions)
            self._pause_full()
            now = self._clock_s()
            due = now - settled_s >= config.commit_interval_ms / 1000 or len(pending) >= config.max_unacked
            if (pending or uncommitted) and (due or not batch):
                await self._settle(pending, commit=uncommitted)
                pending, uncommitted, settled_s = [], False, now
        await self._settle(pending, commit=uncommitted)

    async def _settle(self, pending: list[asyncio.Future[Any]], *, commit: bool) -> None:
        """Wait for every produce in ``pending``, then commit what was consumed (at-least-once)."""
        if pending:
            try:
                await asyncio.gather(*pending)
            except Exception:
                log.exception("producing %d records failed; offsets not committed", len(pending))
                raise
        if commit:
            try:
                offsets = await self._commit_offsets()
                if offsets:
                    await self._consumer.commit(offsets)
            except CommitFailedError as exc:  # a rebalance: the new owner re-reads; duplicates are harmless
                log.warning("offset commit failed, those records will be re-read: %s", exc)

    def _take_in(self, batch: dict[Any, list[Any]]) -> None:
        """Screen each partition's records (one batched check, no Python call per record) into the merge."""
        accepted, stats, decode = self._prefilter.accepted, self._stats, self._decode
        now_s = self._clock_s()
        for tp, tp_records in batch.items():
            kept = accepted([record.value or b"" for record in tp_records])
            decoded = [(r, decode(r.value if r.value is not None else b"")) for r in map(tp_records.__getitem__, kept)]
            relevant = [(r, d) for r, d in decoded if isinstance(d, DecodeError) or d.relevant]
            stats.no_match += len(decoded) - len(relevant)
            decoded = relevant
            self._alignment.fetched_span(
                (tp.topic, tp.partition),
                Span(tp_records[0].offset, tp_records[-1].offset, max(map(_timestamp, tp_records))),
                [(r.offset, r.timestamp, _event_ms(d), (r, d)) for r, d in decoded],
                now_ms=int(now_s * 1000),
                # no earlier than the fetch that brought them was answered: a later time only waits longer
                polled_ms=self._fetched_at(tp),
            )
            dropped = len(tp_records) - len(kept)
            stats.records += len(tp_records)
            stats.prefiltered += dropped
            stats.consumed[tp.topic] += len(tp_records)
            stats.prefiltered_by_topic[tp.topic] += dropped
            stats.last_record_s[(tp.topic, tp.partition)] = now_s

    async def _release(self, positions: dict[Any, tuple[int, int]]) -> list[asyncio.Future[Any]]:
        """Route what the merge releases now. A partition whose highwater is not known yet waits like a lag."""
        lag, polled = self._lag, self._polled = self._observed(positions)
        pending: list[asyncio.Future[Any]] = []
        released = self._alignment.release(lag, int(self._clock_s() * 1000), polled)
        for item in released:
            future = await self._route(*item.item)
            if future is not None:
                pending.append(future)
            self._stats.alignment_wait_ms += item.waited_ms
            self._stats.idle_releases += item.idle
        self._stats.aligned += len(released)
        self._stats.buffered = self._alignment.buffered()
        return pending

    def _observed(self, positions: dict[Any, tuple[int, int]]) -> tuple[dict[Any, int | None], dict[Any, int]]:
        """Per assigned (topic, partition): its lag (None: not known yet) and when the fetch that reported it
        was answered (the consumer's clock, as the records' fetch times in the merge)."""
        lag: dict[Any, int | None] = {(tp.topic, tp.partition): None for tp in self._consumer.assignment()}
        polled: dict[Any, int] = {}
        for tp, (highwater, position) in positions.items():
            key = (tp.topic, tp.partition)
            lag[key] = max(0, highwater - position)
            answered = self._fetched_at(tp)
            if answered is not None:
                polled[key] = answered
        return lag, polled

    async def _commit_offsets(self) -> dict[Any, int]:
        """Per assigned partition: its first record still in the merge, else the consumer's position."""
        offsets: dict[Any, int] = {}
        for tp in self._consumer.assignment():
            try:
                position = await self._consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            offsets[tp] = self._alignment.commit_offset((tp.topic, tp.partition), position)
        return offsets

    async def _route(self, record: Any, decoded: Routing | DecodeError) -> asyncio.Future[Any] | None:
        """Forward (or dead-letter) a record the merge released, decoded when it was fetched."""
        config, stats = self._config, self._stats
        if isinstance(decoded, DecodeError):
            stats.dead_letters[decoded.reason] += 1
            log.warning(
                "dead letter %s[%d]@%d: %s: %r",
                record.topic,
                record.partition,
                record.offset,
                decoded.reason,
                decoded.message[:200],
            )
            headers = dead_letter_headers(
                record.headers,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error_class=f"shellwatch.codec.{type(decoded).__name__}",
                message=f"{decoded.reason}: {decoded.message}",
            )
            headers.append((REASON_HEADER, decoded.reason.encode()))
            dead_value = record.value if record.value is not None or record.key is not None else b""
            future: asyncio.Future[Any] = await self._producer.send(
                config.dead_letter_topic, value=dead_value, key=record.key, headers=headers
            )
            return future
        if not decoded.kinds:
            stats.other_category += 1
            return None
        ts_ms = decoded.timestamp_ms
        if ts_ms is not None and record.timestamp >= 0 and ts_ms - record.timestamp > config.far_future_ms:
            stats.far_future += 1
        key, partition = forward_target(decoded.host_id, record.key, record.partition, self._partitions)
        headers = forward_headers(
            record.headers,
            kinds=",".join(decoded.kinds).encode(),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            broker_ts=record.timestamp,
        )
        stats.forwarded += 1
        future = await self._producer.send(
            config.relevant_topic, value=record.value, key=key, partition=partition, headers=headers
        )
        return future

    async def _positions(self) -> dict[Any, tuple[int, int]]:
        """(highwater, position) of each assigned source partition whose highwater is known (sampled once per
        turn of the loop, for the markers and for pausing); also the lag the metrics report."""
        consumer = self._consumer
        positions: dict[Any, tuple[int, int]] = {}
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:  # nothing fetched yet since the assignment: unknown
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            positions[tp] = (highwater, position)
            self._stats.lag[(tp.topic, tp.partition)] = highwater - position
        return positions

    async def _markers(self, positions: dict[Any, tuple[int, int]]) -> list[asyncio.Future[Any]]:
        now = self._clock_s()
        self._stats.heartbeat_s = now
        interval_s = self._config.marker_interval_ms / 1000
        lag, polled = self._observed(positions)
        pending: list[asyncio.Future[Any]] = []
        for tp, (highwater, position) in positions.items():
            last = self._last_marker.get(tp)
            key = (tp.topic, tp.partition)
            if (last is not None and now - last < interval_s) or key in self._paused:
                continue
            if not self._alignment.vouches(key, lag, polled):  # drained, caught up, and as far as the merge trusts
                continue
            as_of_ms = self._fetched_at(tp)
            if position < highwater or as_of_ms is None:
                continue
            headers = marker_headers(self._kinds[tp.topic], tp.topic, tp.partition, as_of_ms)
            pending.append(
                await self._producer.send(
                    self._config.relevant_topic,
                    value=b"",
                    key=None,
                    partition=tp.partition % self._partitions,
                    headers=headers,
                )
            )
            self._last_marker[tp] = now
            self._stats.markers += 1
        return pending

    def _pause_full(self) -> None:
        """Pause the partitions whose merge buffers are full (the merge waits for others); resume the rest."""
        consumer = self._consumer
        assigned = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}
        pause = self._alignment.full() & assigned.keys()
        newly, resumed = pause - self._paused, (self._paused - pause) & assigned.keys()
        if newly:
            consumer.pause(*(assigned[key] for key in newly))
            log.debug(
                "paused %s: merge buffer full, waiting for %s",
                sorted(newly),
                self._alignment.waiting_on(self._lag, self._polled),
            )
        if resumed:
            consumer.resume(*(assigned[key] for key in resumed))
        self._paused = pause

    def _fetched_at(self, tp: Any) -> int | None:
        """When the fetch that last reported ``tp``'s highwater was answered (epoch ms, this host's clock)."""
        try:
            polled_ms: int | None = self._consumer.last_poll_timestamp(tp)
        except AssertionError:  # revoked meanwhile
            return None
        return polled_ms


def _event_ms(decoded: Routing | DecodeError) -> int:
    """The record's event time for the merge's ties (its events' ``@timestamp``); -1 if it has none (or no
    events)."""
    if isinstance(decoded, DecodeError) or not decoded.kinds:
        return -1
    ts = decoded.timestamp_ms
    return -1 if ts is None else ts


async def run_prefilter_stage(
    config: PrefilterConfig,
    prefilter: ByteScreen,
    stop: asyncio.Event,
    stats: PrefilterStats,
    decode: Router = route_record,
    *,
    clock_s: Callable[[], float] = time.monotonic,
) -> None:
    """Forward until *stop* is set (the batch in hand is finished and committed first).

    ``clock_s`` (monotonic seconds) times commits, markers and the health figures in *stats*. The stage
    reads no wall clock: a marker's ``as_of`` is when the consumer's fetch was answered, as the consumer
    recorded it.

    Raises :class:`~shellwatch.kafka.admin.PartitionMismatchError` before consuming anything when the topics
    are missing or not co-partitioned, and re-raises any produce failure (nothing of that batch is committed).
    """
    sources = [name for name, _ in config.source_topics]
    counts = await check_partitions(
        config.bootstrap_servers,
        [*sources, config.relevant_topic, config.dead_letter_topic],
        security=config.security,
        retry_backoff_ms=config.retry_backoff_ms,
    )
    partitions = require_copartitioned(
        counts, source_topics=sources, relevant_topic=config.relevant_topic, dead_letter_topic=config.dead_letter_topic
    )
    security = aiokafka_kwargs(config.security)
    install_single_join_group()  # two assignors: aiokafka 0.14 would send a JoinGroup for each (see group_join)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=config.bootstrap_servers,
        client_id="shellwatch-forwarder",
        group_id=config.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=config.max_partition_fetch_bytes,
        fetch_max_wait_ms=config.fetch_max_wait_ms,
        # co-numbered partitions of the inputs on one member, so the merge sees a host's streams together (range
        # assigns partition i of every topic to the same member); round robin, aiokafka's default and what
        # earlier versions used, stays second so a group mid-upgrade still agrees on a protocol
        partition_assignment_strategy=(RangePartitionAssignor, RoundRobinPartitionAssignor),
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=config.heartbeat_interval_ms,
        retry_backoff_ms=config.retry_backoff_ms,
        **security,
    )
    consumer.subscribe(sources, listener=AssignmentListener(stats, clock_s))
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers,
        client_id="shellwatch-forwarder",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_request_size=MAX_REQUEST_BYTES,
        retry_backoff_ms=config.retry_backoff_ms,
        **security,
    )
    try:
        await producer.start()
        await consumer.start()
        for topic in (config.relevant_topic, config.dead_letter_topic):
            await producer.partitions_for(topic)  # metadata before the first send with an explicit partition
        log.info(
            "forwarding %s -> %s (%d partitions), dead letters -> %s, group %s",
            ", ".join(f"{name} ({', '.join(kinds)})" for name, kinds in config.source_topics),
            config.relevant_topic,
            partitions,
            config.dead_letter_topic,
            config.group_id,
        )
        await _PrefilterStage(
            config,
            prefilter=prefilter,
            stats=stats,
            consumer=consumer,
            producer=producer,
            partitions=partitions,
            decode=decode,
            clock_s=clock_s,
        ).run(stop)
    finally:
        await _close(consumer, producer, config.close_timeout_s)


async def _close(consumer: Any, producer: Any, timeout_s: float) -> None:
    """Stop both clients, each within ``timeout_s``: while no broker answers, a producer's stop waits for its
    unacknowledged batches to expire and a consumer's for its group coordinator. Past the timeout the client's
    background work is cancelled; the records in question were not committed and will be read again."""
    for name, client in (("consumer", consumer), ("producer", producer)):
        try:
            await asyncio.wait_for(asyncio.shield(_stop(client)), timeout_s)
        except TimeoutError:
            log.warning("the forwarder's %s did not stop within %.0f s; abandoning it", name, timeout_s)
            await _abandon(client)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # aiokafka's consumer can raise a CancelledError of its own from stop() after a lost coordinator
            log.warning("stopping the forwarder's %s ended in a cancellation from within; abandoning it", name)
            await _abandon(client)
        except Exception:  # don't let a failing stop hide the error that brought us here
            log.exception("stopping the forwarder's %s failed", name)


async def _stop(client: Any) -> None:
    await client.stop()


async def _abandon(client: Any) -> None:
    """Cancel what a client that would not stop still runs: the producer's sender, then its connections."""
    for part in (getattr(client, "_sender", None), getattr(client, "_fetcher", None)):
        if part is not None:
            await _quietly(part.close(), f"closing {type(part).__name__} of an abandoned client")
    inner = getattr(client, "client", None) or getattr(client, "_client", None)
    if inner is not None:
        await _quietly(inner.close(), "closing the connections of an abandoned client")


async def _quietly(closing: Any, what: str) -> None:
    """Await ``closing`` for at most 2 s; its failures (a cancellation from within included) are only logged."""
    try:
        await asyncio.wait_for(closing, 2.0)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.debug("%s: cancelled from within", what)
    except Exception:
        log.debug("%s failed", what, exc_info=True)
