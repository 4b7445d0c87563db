"""The ``record`` and ``replay`` commands: arguments and settings in, exit status out."""

from __future__ import annotations

import argparse
import sys
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from shellwatch.core.pipeline import INPUTS, Pipeline
from shellwatch.kafka.security import librdkafka_conf
from shellwatch.settings import KafkaSettings
from shellwatch.tools.expectations import ExpectationError, format_diff, load_expectations

__all__ = ["add_record_parser", "add_replay_parser", "run_record", "run_replay"]


def add_record_parser(commands: Any) -> None:
    record = commands.add_parser("record", help="capture Kafka topics to NDJSON (key, partition, offset, headers)")
    record.add_argument("--topic", action="append", required=True, help="a topic to capture (repeatable)")
    record.add_argument("--out", required=True, help="output file ('-' for stdout)")
    record.add_argument("--bootstrap", help="override KAFKA_BOOTSTRAP_SERVERS")
    record.add_argument("--max-records", type=int, help="stop after this many records")
    record.add_argument("--duration-s", type=float, help="stop after this many seconds")
    record.add_argument("--from-end", action="store_true", help="capture only records written from now on")


def add_replay_parser(commands: Any) -> None:
    replay = commands.add_parser("replay", help="produce captured or ECS NDJSON events into the input topics")
    replay.add_argument("files", nargs="+", type=Path, help="captures (shellwatch record) or plain ECS NDJSON")
    replay.add_argument("--bootstrap", help="override KAFKA_BOOTSTRAP_SERVERS")
    replay.add_argument("--network-topic", help="override SHELLWATCH_NETWORK_TOPIC")
    replay.add_argument("--process-topic", help="override SHELLWATCH_PROCESS_TOPIC")
    replay.add_argument("--app-id", help="the worker's SHELLWATCH_APP_ID (its consumer groups), for --expect")
    replay.add_argument("--alerts-topic", help="override SHELLWATCH_ALERTS_TOPIC, for --expect")
    replay.add_argument("--speed", type=float, help="keep recorded gaps divided by SPEED (default: no waiting)")
    replay.add_argument("--expect", type=Path, help="expected alerts (NDJSON); exit 1 on any difference")
    replay.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for alerts (default 120)")
    replay.add_argument("--settle", type=float, default=3.0, help="seconds to keep reading once caught up")


def client_conf(kafka: KafkaSettings, bootstrap: str | None) -> dict[str, Any] | None:
    """The clients' configuration: the broker, and the worker's own SASL/TLS settings."""
    servers = bootstrap or kafka.bootstrap_servers
    return {"bootstrap.servers": servers, **librdkafka_conf(kafka.security)} if servers else None


def run_record(args: argparse.Namespace, kafka: KafkaSettings, err: IO[str]) -> int:
    conf = client_conf(kafka, args.bootstrap)
    if conf is None:
        print("shellwatch: no broker: set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap", file=err)
        return 2
    for name in ("max_records", "duration_s"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            print(f"shellwatch: --{name.replace('_', '-')} must be > 0", file=err)
            return 2
    from confluent_kafka import KafkaException  # noqa: PLC0415 - only these commands pay for Kafka clients

    from shellwatch.tools.record import RecordBounds, RecordingError, record_topics  # noqa: PLC0415

    bounds = RecordBounds(max_records=args.max_records, duration_s=args.duration_s, from_end=args.from_end)
    try:
        with ExitStack() as stack:
            out = sys.stdout.buffer if args.out == "-" else stack.enter_context(Path(args.out).open("wb"))
            count = record_topics(conf, args.topic, out, err, bounds)
    except (RecordingError, KafkaException, OSError) as exc:
        print(f"shellwatch: record failed: {exc}", file=err)
        return 2
    print(f"record: {count} records from {', '.join(args.topic)} to {args.out}", file=err)
    return 0


def run_replay(args: argparse.Namespace, kafka: KafkaSettings, pipeline: Pipeline, out: IO[str]) -> int:
    conf = client_conf(kafka, args.bootstrap)
    if conf is None:
        print("shellwatch: no broker: set KAFKA_BOOTSTRAP_SERVERS or pass --bootstrap", file=out)
        return 2
    if args.speed is not None and args.speed <= 0:
        print("shellwatch: --speed must be > 0", file=out)
        return 2
    network = args.network_topic or kafka.mixed_topic or kafka.network_topic
    process = args.process_topic or kafka.mixed_topic or kafka.process_topic
    others = {kind: kafka.topic_of(kind) for kind in pipeline.inputs if kind not in INPUTS}
    app_id = args.app_id or kafka.app_id
    expected = None
    try:
        if args.expect is not None:
            with args.expect.open("rb") as handle:
                expected = load_expectations(handle, str(args.expect))
        for path in args.files:
            if not path.is_file():
                raise OSError(f"{path}: no such file")
    except (ExpectationError, OSError) as exc:
        print(f"shellwatch: {exc}", file=out)
        return 2
    from confluent_kafka import KafkaException  # noqa: PLC0415 - only these commands pay for Kafka clients

    from shellwatch.tools.replay.expect import (  # noqa: PLC0415
        AlertTopicMissingError,
        AlertWatch,
        CatchUp,
        await_expectations,
    )
    from shellwatch.tools.replay.produce import ReplayError, ReplayTopics, replay_files  # noqa: PLC0415

    run_id = f"replay-{uuid.uuid4().hex[:12]}"
    topics = ReplayTopics(network, process, others)
    with ExitStack() as stack:
        try:
            watch = None
            if expected is not None:
                watch = AlertWatch(conf, args.alerts_topic or kafka.alerts_topic)
                stack.callback(watch.close)
            summary = replay_files(
                args.files,
                client_conf=conf,
                topics=topics,
                decode=pipeline.decode,
                run_id=run_id,
                err=sys.stderr,
                speed=args.speed,
            )
        except (ReplayError, AlertTopicMissingError, KafkaException, OSError) as exc:
            print(f"shellwatch: replay failed: {exc}", file=out)
            return 2
        print("\n".join(summary.lines()), file=out)
        if watch is None or expected is None:
            return 0
        catch_up = CatchUp(conf, input_topics=topics.names, relevant_topic=f"{app_id}-relevant", app_id=app_id)
        stack.callback(catch_up.close)
        catch_up.mark_replayed()
        result = await_expectations(
            watch, catch_up, expected, summary.produced_ms, timeout_s=args.timeout, settle_s=args.settle
        )
    print("\n".join(format_diff(result.diff, result.latency_ms)), file=out)
    if result.ignored:
        print(f"expect: {result.ignored} alerts of other traffic ignored", file=out)
    if result.timed_out:
        print(f"expect: timed out after {args.timeout:.0f} s ({result.stage})", file=out)
        return 1
    return 0 if result.diff.ok else 1
