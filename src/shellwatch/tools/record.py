"""``shellwatch record --topic T... --out FILE``: capture topics to NDJSON (see :mod:`shellwatch.formats.capture`).

Reads every partition of the given topics with its own throw-away consumer group (nothing is committed,
so a production consumer group is never disturbed), from the beginning (or, with ``from_end``, from now
on), and stops at the first bound reached: ``max_records``, ``duration_s``, or — the default when neither
is given — the end offsets the topics had when recording started.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    TopicPartition,
)

from shellwatch.errors import RecordingError
from shellwatch.formats.capture import CapturedRecord, TimestampType, capture_line
from shellwatch.tools.progress import Progress

__all__ = ["RecordBounds", "RecordingError", "record_topics"]


@dataclass(frozen=True, slots=True)
class RecordBounds:
    max_records: int | None = None
    duration_s: float | None = None
    from_end: bool = False

    @property
    def to_end_offsets(self) -> bool:
        return self.max_records is None and self.duration_s is None


_TIMESTAMP_TYPES: dict[int, TimestampType] = {
    TIMESTAMP_CREATE_TIME: "create",
    TIMESTAMP_LOG_APPEND_TIME: "log_append",
}


def _captured(message: Any) -> CapturedRecord:
    ts_type, ts_ms = message.timestamp()
    kind = _TIMESTAMP_TYPES.get(ts_type, "none")
    return CapturedRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp_ms=ts_ms if kind != "none" else None,
        timestamp_type=kind,
        key=message.key(),
        value=message.value(),
        headers=tuple(message.headers() or ()),
    )


def record_topics(
    client_conf: Mapping[str, Any],
    topics: Sequence[str],
    out: IO[bytes],
    err: IO[str],
    bounds: RecordBounds,
    *,
    clock_s: Callable[[], float] = time.monotonic,
) -> int:
    """Write the captured records to ``out``; returns how many."""
    consumer = Consumer(
        {
            **client_conf,
            "group.id": f"shellwatch-record-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = _partitions(consumer, topics)
        start = OFFSET_END if bounds.from_end else OFFSET_BEGINNING
        remaining = _end_offsets(consumer, partitions) if bounds.to_end_offsets else {}
        consumer.assign([TopicPartition(tp.topic, tp.partition, start) for tp in partitions])
        return _drain(consumer, out, err, bounds, remaining=remaining, clock_s=clock_s)
    finally:
        consumer.close()


def _partitions(consumer: Consumer, topics: Sequence[str]) -> list[TopicPartition]:
    partitions = []
    for topic in dict.fromkeys(topics):
        info = consumer.list_topics(topic, timeout=15).topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise RecordingError(f"topic {topic} does not exist")
        partitions += [TopicPartition(topic, p) for p in sorted(info.partitions)]
    return partitions


def _end_offsets(consumer: Consumer, partitions: Sequence[TopicPartition]) -> dict[tuple[str, int], int]:
    """Per partition, the offset recording stops at (only partitions holding records)."""
    ends = {}
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=15)
        if high > low:
            ends[(tp.topic, tp.partition)] = high
    return ends


def _drain(
    consumer: Consumer,
    out: IO[bytes],
    err: IO[str],
    bounds: RecordBounds,
    *,
    remaining: dict[tuple[str, int], int],
    clock_s: Callable[[], float],
) -> int:
    progress = Progress("record", err, clock_s, total=bounds.max_records)
    deadline = clock_s() + bounds.duration_s if bounds.duration_s is not None else None
    while True:
        if bounds.to_end_offsets and not remaining:
            break
        if bounds.max_records is not None and progress.count >= bounds.max_records:
            break
        if deadline is not None and clock_s() >= deadline:
            break
        for message in consumer.consume(num_messages=1000, timeout=0.5):
            error = message.error()
            tp = (str(message.topic()), int(message.partition() or 0))
            if error is not None:  # at a partition's end everything up to its end offset was read
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.pop(tp, None)
                continue
            offset = int(message.offset() or 0)
            end = remaining.get(tp)
            if bounds.to_end_offsets and (end is None or offset >= end):
                continue
            if bounds.max_records is not None and progress.count >= bounds.max_records:
                break
            out.write(capture_line(_captured(message)) + b"\n")
            progress.advance()
            if end is not None and offset + 1 >= end:
                del remaining[tp]
    out.flush()
    progress.done()
    return progress.count
