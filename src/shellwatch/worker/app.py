"""The Faust wiring: ``create_app(settings, rule)`` builds the worker. Nothing here decides detections.

Two stages run in one worker process (and scale out as two consumer groups):

1. the pre-filter stage (:mod:`shellwatch.worker.prefilter.stage`, a batched bare aiokafka loop, an app task)
   reads the input topics, drops records no rule can match (~98%) before they cost a Faust event,
   dead-letters undecodable ones, and forwards the rest (raw, keyed by ``host.id``, same partition)
   to ``<app_id>-relevant`` together with per-partition progress markers;
2. the ``correlate`` agent consumes that topic, runs the core (:class:`CorrelationRuntime`), produces
   alerts, then mirrors the changed hosts' sequence state into the ``sequence-state`` table
   (changelog-backed, co-partitioned with the relevant topic, emptied by event time as sequences complete
   or expire). Before any offset of that topic is committed, every alert is acknowledged by the broker and
   every state write handed to the producer, whose flush Faust awaits (see ``before_commit``). A record the
   agent cannot handle goes to the dead-letter topic; the loop never stops on one record.

Broker outages: the pre-filter stage is started again (fresh clients, committed offsets) after a backoff
whenever it fails; alerts and dead letters that the cluster does not acknowledge are sent again after a
backoff, never dead-lettered or dropped; Faust declaring a topic while no broker answers tries again too.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faust

from shellwatch.core.pipeline import Pipeline
from shellwatch.eql.screen import query_screen
from shellwatch.formats.alert_codec import AlertFormat, encode_alert
from shellwatch.kafka.clock import WallClockMs, wall_clock_ms
from shellwatch.kafka.dead_letters import dead_letter_headers
from shellwatch.kafka.headers import BROKER_TS_HEADER, PROGRESS_HEADER
from shellwatch.kafka.reconnect import CLUSTER, Backoff, is_transient
from shellwatch.kafka.schema_registry import RegistryClient
from shellwatch.kafka.security import faust_kwargs
from shellwatch.rules.eql_rule import EqlRule
from shellwatch.rules.model import ReverseShellRule
from shellwatch.rules.shell_rule import ShellRule
from shellwatch.settings import KafkaSettings, Settings
from shellwatch.worker.alert_latency import RecordTimes
from shellwatch.worker.gapless import GaplessConsumer, GaplessTransport
from shellwatch.worker.log_limit import RepeatLimiter
from shellwatch.worker.prefilter.stage import PrefilterConfig, run_prefilter_stage
from shellwatch.worker.prefilter.stats import PrefilterStats
from shellwatch.worker.restarts import run_restarting
from shellwatch.worker.runtime import CorrelationRuntime, UnusableRecordError
from shellwatch.worker.stage_stats import CorrelateStats
from shellwatch.worker.web import install_monitoring

__all__ = ["create_app"]

log = logging.getLogger("shellwatch.worker")
FAUST_ENV_PREFIX = "SHELLWATCH_FAUST_"
STATS_INTERVAL_S = 30.0
MAX_RECORD_BYTES = 8 * 1024 * 1024
# What the producer of alerts and state writes buffers per partition. aiokafka sends one request per broker at
# a time and makes a send wait while its partition's batch is full: at its default (16 KiB, a few host states)
# the agent, which hands each record's state writes over before the next record, was held to a few records per
# broker round trip, and fell behind live traffic of a few hundred relevant records a second.
PRODUCER_BATCH_BYTES = 1024 * 1024
# a failed pre-filter stage is started again after 1 s, 2 s, 4 s, ... at most 10 s (after a broker outage it
# resumes within that); the worker's own sends and Faust's topic declarations retry on the same pace
RESTART_BACKOFF_S = (1.0, 10.0)


def _backoff() -> Backoff:
    return Backoff(*RESTART_BACKOFF_S)


async def _retrying(attempt: Callable[[], Any], what: str, *, unreachable: Callable[[], bool]) -> Any:
    """``await attempt()`` until it succeeds; failures that a broker outage explains are retried after a backoff.

    An outage explains a transient Kafka error (:func:`~shellwatch.kafka.reconnect.is_transient`), or any error
    while no broker answers (``unreachable()``). Others are raised. Each retry logs one warning.
    """
    backoff = _backoff()
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if not (is_transient(exc) or unreachable()):
                raise
            delay = backoff.next()
            log.warning("%s failed (%s: %s); trying again in %.1f s", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)


class _PatientTopic(faust.Topic):
    """Faust's topic, whose declaration (Faust creating the changelog topic when its metadata lacks it) waits for
    the cluster instead of crashing the worker with ``NodeNotReadyError`` while no broker answers."""

    async def declare(self) -> None:
        declare = super().declare
        if self.app.should_stop:
            return
        await _retrying(declare, f"declaring topic(s) {', '.join(self.topics)}", unreachable=_unreachable)


def _unreachable() -> bool:
    return not CLUSTER.reachable


class _TableStore:
    """The :class:`~shellwatch.worker.runtime.StateStore` view of a Faust table (raw bytes keys)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, key: str) -> bytes | None:
        value = self.table.get(key.encode())
        return None if value is None else bytes(value)

    def put(self, key: str, value: bytes) -> None:
        self.table[key.encode()] = value

    def delete(self, key: str) -> None:
        raw = key.encode()
        if raw in self.table:
            del self.table[raw]

    def items(self) -> Iterator[tuple[str, bytes]]:
        for key, value in list(self.table.items()):
            yield bytes(key).decode(), bytes(value)


def _headers(raw: Iterable[tuple[str, bytes]] | dict[str, bytes] | None) -> list[tuple[str, bytes]]:
    if raw is None:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


@dataclass(frozen=True, slots=True)
class _InFlight:
    future: Any
    key: bytes
    value: bytes
    alert_id: str
    cause: Any  # the record that raised the alert


class _Outputs:
    """Alert delivery and dead letters. A dead letter is awaited until the broker has it; alerts are handed to the
    producer and acknowledged in :meth:`settle`, which the consumer awaits before it commits any offset: waiting
    for each alert's acknowledgement before the next record capped the agent at one broker round trip per alert,
    and a worker behind on Java-heavy traffic (a restart, a burst of attacks) never caught up."""

    def __init__(
        self,
        alerts_topic: Any,
        dead_letter_topic: Any,
        alert_format: AlertFormat,
        stats: CorrelateStats,
        record_times: RecordTimes,
        *,
        clock_ms: WallClockMs = wall_clock_ms,
    ) -> None:
        self.alerts_topic = alerts_topic
        self.alert_format = alert_format
        self.dead_letter_topic = dead_letter_topic
        self.stats = stats
        self.record_times = record_times
        self.clock_ms = clock_ms
        self._in_flight: list[_InFlight] = []  # handed to the producer, acknowledgement not seen by settle() yet

    async def deliver(self, alerts: list[dict[str, Any]], cause: Any = None) -> None:
        """Hand the alerts to the producer without waiting for the broker: :meth:`settle` waits for them before
        any offset is committed (the consumer calls it), so the agent goes on with the next record meanwhile.
        ``cause``: the record that raised them (dead-lettered if an alert can never be delivered)."""
        for alert in alerts:
            key = str(alert["host"]["id"]).encode()
            value = encode_alert(alert, self.alert_format)
            alert_id = str(alert["event"]["id"])
            future = await _retrying(
                partial(self._hand_over, key, value), f"delivering alert {alert_id}", unreachable=_unreachable
            )
            future.add_done_callback(partial(self._delivered, alert, self.record_times.pop(alert_id)))
            self._in_flight.append(_InFlight(future, key, value, alert_id, cause))

    async def _hand_over(self, key: bytes, value: bytes) -> Any:
        """Give one alert to the producer; returns the future its acknowledgement completes."""
        return await self.alerts_topic.send(key=key, value=value, force=True)

    def _delivered(self, alert: dict[str, Any], record_ms: int | None, future: Any) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # settle() sends it again
        self.stats.delivered(alert, None if record_ms is None else (self.clock_ms() - record_ms) / 1000)

    async def settle(self) -> None:
        """Until every alert handed over is acknowledged by the broker; one whose delivery failed is sent again
        (retried while a broker outage explains the failure). An alert that can never be delivered dead-letters
        the record that raised it, as a failure of that record would."""
        while self._in_flight:
            in_flight, self._in_flight = self._in_flight, []
            for sent in in_flight:
                try:
                    await sent.future
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "alert %s was not delivered (%s: %s); sending it again", sent.alert_id, type(exc).__name__, exc
                    )

                async def send(sent: _InFlight = sent) -> None:
                    await (await self._hand_over(sent.key, sent.value))

                try:
                    await _retrying(send, f"delivering alert {sent.alert_id}", unreachable=_unreachable)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("alert %s cannot be delivered", sent.alert_id)
                    if sent.cause is not None:
                        await self.dead_letter(sent.cause, type(exc).__name__, f"alert {sent.alert_id}: {exc}")

    @property
    def in_flight(self) -> int:
        """Alerts handed over and not acknowledged (as far as :meth:`settle` knows)."""
        return len(self._in_flight)

    async def dead_letter(self, message: Any, reason: str, text: str) -> None:
        self.stats.dead_letters[reason] += 1
        headers = dead_letter_headers(
            _headers(message.headers),
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            error_class=reason,
            message=text,
        )

        async def send() -> None:
            pending = await self.dead_letter_topic.send(
                key=message.key, value=message.value, headers=[(k, v or b"") for k, v in headers], force=True
            )
            await pending

        where = f"{message.topic}[{message.partition}]@{message.offset}"
        await _retrying(send, f"dead-lettering {where}", unreachable=_unreachable)


async def hand_over_changelog(buffer: Any) -> None:
    """Hand every buffered table write to the Kafka producer; the consumer awaits this before each offset commit.

    Table writes go through Faust's producer buffer. Before committing offsets Faust flushes that buffer with
    ``flush_atmost``, which gives up after 0.1 s without progress, so an offset could be committed while the
    state change it implies was never sent, and a crash then would lose it. The offsets a commit covers are
    those of records the agent finished, whose writes were buffered as it handled them; once the buffer is
    empty here they all sit in the producer, whose flush Faust awaits in full before it commits. (Waiting for
    this after every record instead cost the agent event-loop turns per record, shared with the busy pre-filter
    stage: it fell behind live traffic of a few hundred relevant records a second.) Returns at once when
    nothing is buffered; stops trying when the buffer stops.
    """
    while buffer.size and buffer.state == "running":
        await buffer.flush_atmost(None)


def _before_commit(app: faust.App, outputs: _Outputs) -> Callable[[], Awaitable[None]]:
    """What the consumer awaits before each offset commit: the state writes handed to the producer (Faust then
    awaits its flush) and every alert acknowledged."""

    async def before_commit() -> None:
        await hand_over_changelog(app.producer.buffer)
        await outputs.settle()

    return before_commit


class _RecordHandler:
    """The correlate agent's work on one record of the relevant topic; never raises for a bad record."""

    def __init__(
        self,
        runtime: CorrelationRuntime,
        outputs: _Outputs,
        stage: CorrelateStats,
        assigned_partitions: Callable[[], set[int]],
        *,
        clock_ms: WallClockMs = wall_clock_ms,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.outputs = outputs
        self.stage = stage
        self.assigned_partitions = assigned_partitions
        self.clock_ms = clock_ms  # event processing time (the core's "now"), epoch ms
        self.clock_s = clock_s  # the stage's busy/idle timing

    async def __call__(self, message: Any) -> None:
        runtime, outputs, clock_ms = self.runtime, self.outputs, self.clock_ms
        self.stage.begin(self.clock_s())
        marker = False
        try:
            if runtime.needs_reload:
                await outputs.deliver(runtime.reload(self.assigned_partitions(), clock_ms()), message)
            headers = dict(_headers(message.headers))
            marker = PROGRESS_HEADER in headers
            alerts = runtime.handle(message.value, headers, message.partition, clock_ms(), _record_ms(headers))
            await outputs.deliver(alerts, message)
            runtime.persist()
        except UnusableRecordError as exc:
            await outputs.dead_letter(message, exc.reason, exc.message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one bad record must never stop or silently skip
            log.exception("record %s[%d]@%d failed", message.topic, message.partition, message.offset)
            await outputs.dead_letter(message, type(exc).__name__, str(exc))
        finally:
            self.stage.done(message.partition, message.offset, marker=marker, now_s=self.clock_s())


def _record_ms(headers: dict[str, bytes]) -> int | None:
    """The input record's Kafka timestamp, as the pre-filter stage forwarded it."""
    try:
        value = int(headers.get(BROKER_TS_HEADER, b""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _faust_app(kafka: KafkaSettings, bootstrap: str, partitions: int) -> faust.App:
    data_dir = kafka.data_dir or Path(tempfile.gettempdir()) / "shellwatch" / kafka.app_id
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        kafka.app_id,
        broker=[f"kafka://{server.strip()}" for server in bootstrap.split(",")],
        env={},  # settings come from our one Settings object, never from stray variables
        env_prefix=FAUST_ENV_PREFIX,
        store="memory://",
        datadir=str(data_dir),
        topic_partitions=partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=MAX_RECORD_BYTES,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        consumer_max_fetch_size=MAX_RECORD_BYTES,
        broker_commit_interval=1.0,
        broker_session_timeout=kafka.session_timeout_ms / 1000,  # a killed member's partitions move this soon
        broker_heartbeat_interval=kafka.heartbeat_interval_ms / 1000,
        stream_recovery_delay=0.0,
        stream_wait_empty=False,
        web_enabled=kafka.web_enabled,
        web_port=kafka.web_port,
        web_bind="0.0.0.0",
        web_tables_enabled=False,  # would serve the sequence state (raw events) to anyone on the port
        web_router_enabled=False,  # would list the other workers; we route nothing over HTTP
        Topic=_PatientTopic,  # declaring a topic waits out a broker outage (see the class)
        **faust_kwargs(kafka.security),  # broker_credentials: the same SASL/TLS as every other client
    )


def _forwarder_config(kafka: KafkaSettings, bootstrap: str, inputs: Sequence[str]) -> PrefilterConfig:
    return PrefilterConfig(
        bootstrap_servers=bootstrap,
        source_topics=kafka.source_topics(inputs),
        relevant_topic=kafka.relevant_topic,
        dead_letter_topic=kafka.dead_letter_topic,
        group_id=f"{kafka.app_id}-prefilter",
        security=kafka.security,
        max_buffered=kafka.max_buffered_per_partition,
        idle_ms=kafka.alignment_idle_ms,
        max_partition_fetch_bytes=kafka.max_partition_fetch_bytes,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
    )


def _announce_rules(app: faust.App, rules: Sequence[EqlRule]) -> None:
    """Log the operator's rules once the worker's logging is set up (a task at start)."""

    @app.task  # type: ignore[untyped-decorator]
    async def announce_rules() -> None:
        _log_operator_rules(rules)


def _log_operator_rules(rules: Sequence[EqlRule]) -> None:
    for extra in rules:
        screened = query_screen(extra.compiled.query).patterns is not None
        log.info(
            "running rule %s (%s) from SHELLWATCH_RULES: %d stage(s), %d exception item(s)%s",
            extra.rule_id,
            extra.file,
            len(extra.compiled.stages),
            sum(len(x.items) for x in extra.exceptions),
            "" if screened else "; a stage has no pre-filter pattern, so the pre-filter accepts every record",
        )


def create_app(
    settings: Settings,
    rule: ReverseShellRule,
    shell_rule: ShellRule,
    *,
    partitions: int,
    clock_ms: WallClockMs = wall_clock_ms,
    log_limiter: RepeatLimiter | None = None,
    rules: Sequence[EqlRule] = (),
) -> faust.App:
    """The worker's Faust app; ``clock_ms`` is the wall clock the correlation agent reads; the stats timer reports
    what ``log_limiter`` suppressed."""
    kafka = settings.kafka
    if kafka.bootstrap_servers is None:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set")
    app = _faust_app(kafka, kafka.bootstrap_servers, partitions)
    # the relevant topic's offsets have no holes: its records reach the agent in order across rebalances
    app.transport = GaplessTransport(app.conf.broker_consumer, app, contiguous_topics=[kafka.relevant_topic])
    relevant = app.topic(kafka.relevant_topic, key_serializer="raw", value_serializer="raw", partitions=partitions)
    alerts_topic = app.topic(kafka.alerts_topic, key_serializer="raw", value_serializer="raw")
    dead_letters = app.topic(kafka.dead_letter_topic, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        "sequence-state",
        key_type=bytes,  # bytes keys and values: Faust's "raw" codec, in writes and in changelog recovery
        value_type=bytes,
        partitions=partitions,
        extra_topic_configs={"max.message.bytes": str(MAX_RECORD_BYTES), **kafka.created_topic_configs},
    )
    resolver = RegistryClient(kafka.schema_registry_url) if kafka.schema_registry_url else None
    runtime = CorrelationRuntime(
        Pipeline(rule, settings.pipeline, shell_rule, resolver, rules=rules), _TableStore(table)
    )
    if runtime.pipeline.prefilter_off_reason is not None:
        log.warning("pre-filter off: %s", runtime.pipeline.prefilter_off_reason)
    forwarder_stats, stage = PrefilterStats(), CorrelateStats()
    outputs = _Outputs(alerts_topic, dead_letters, kafka.alert_format, stage, runtime.record_times, clock_ms=clock_ms)
    app.transport.before_commit = _before_commit(app, outputs)  # the consumer is made later, from the transport
    monitor = install_monitoring(
        app, kafka=kafka, health=settings.health, forwarder=forwarder_stats, correlate=stage, runtime=runtime
    )

    def assigned_partitions() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == kafka.relevant_topic}

    def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        runtime.needs_reload = True
        stage.rebalances.revoked(time.monotonic())

    def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        runtime.needs_reload = True
        stage.rebalances.assigned(time.monotonic())

    app.on_partitions_assigned.connect(_assigned)
    app.on_partitions_revoked.connect(_revoked)

    handle = _RecordHandler(runtime, outputs, stage, assigned_partitions, clock_ms=clock_ms)

    @app.agent(relevant, name="correlate")
    async def correlate(stream: Any) -> None:
        async for event in stream.events():
            await handle(event.message)

    forwarder_config = _forwarder_config(kafka, kafka.bootstrap_servers, runtime.pipeline.inputs)

    async def run_stage_once() -> None:
        pipeline = runtime.pipeline
        await run_prefilter_stage(
            forwarder_config, pipeline.prefilter, asyncio.Event(), forwarder_stats, pipeline.decode_for_routing
        )

    def stage_failed(exc: BaseException, delay_s: float) -> None:
        first = monitor.prefilter_failure is None or monitor.prefilter_running()  # ran again since the last one
        monitor.prefilter_failed(f"{type(exc).__name__}: {exc}")
        log.warning(
            "pre-filter stage failed (%s: %s)%s; starting it again in %.1f s from the committed offsets",
            type(exc).__name__,
            exc,
            "" if CLUSTER.reachable else " while no Kafka broker answers",
            delay_s,
            exc_info=exc if first else None,  # the traceback once per run of failures
        )

    _announce_rules(app, rules)

    @app.task  # type: ignore[untyped-decorator]
    async def prefilter_stage() -> None:
        await run_restarting(run_stage_once, backoff=_backoff(), on_failure=stage_failed)
        monitor.prefilter_stopped = "the pre-filter stage returned"  # only a set stop event ends it: never here

    @app.timer(STATS_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def report_stats() -> None:
        if log_limiter is not None:
            log_limiter.flush()
        correlator = runtime.pipeline.correlator
        consumer = app.consumer
        refetches, held = (
            (consumer.refetches + consumer.read_offsets_reset, consumer.contiguous.held)
            if isinstance(consumer, GaplessConsumer)
            else (0, 0)
        )
        log.info(
            "stats forwarder=%s correlator=%s hosts=%d held=%d pending=%d correlate=%s relevant_refetches=%d "
            "relevant_held_after_rebalance=%d",
            forwarder_stats,
            correlator.stats,
            correlator.host_count,
            correlator.held_count,
            correlator.pending_count,
            stage,
            refetches,
            held,
        )

    return app
