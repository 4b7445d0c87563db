"""Every Kafka header name shellwatch reads or writes, defined once. Names only: no I/O.

On the relevant topic (the contract between the pre-filter stage and the correlation agent):

- forwarded record: the original headers, then ``shellwatch.kind`` (the inputs its events belong to:
  ``network``, ``process``, ``network,process``, or another event category a loaded rule reads),
  ``shellwatch.source`` (``topic/partition/offset``) and ``shellwatch.broker_ts``
  (the source record's broker timestamp in epoch ms; the forwarded record gets a new broker timestamp,
  so replayed old data is not deleted at once by the relevant topic's time-based retention);
- progress marker (empty key and value): ``shellwatch.progress`` (the inputs the source topic carries, comma-separated),
  ``shellwatch.source`` (``topic/partition``) and ``shellwatch.as_of`` (epoch ms at which the fetch that
  found the partition caught up was answered: records written after it may still be in flight).

Only the pre-filter stage may set headers starting with :data:`WORKER_PREFIX` (``shellwatch.``): input
headers of that name are dropped, so an input record cannot pose as a progress marker.

On dead letters: the Kafka Connect ``__connect.errors.*`` headers (see :mod:`shellwatch.kafka.dead_letters`),
plus :data:`REASON_HEADER` from the pre-filter stage.

On replayed input: :data:`REPLAY_HEADER` (``shellwatch-replay``, set by ``shellwatch replay``; no
``shellwatch.`` prefix, so the pre-filter stage forwards it unchanged).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AS_OF_HEADER",
    "BROKER_TS_HEADER",
    "ERRORS_CLASS_HEADER",
    "ERRORS_MESSAGE_HEADER",
    "ERRORS_OFFSET_HEADER",
    "ERRORS_PARTITION_HEADER",
    "ERRORS_PREFIX",
    "ERRORS_STAGE_HEADER",
    "ERRORS_TOPIC_HEADER",
    "KIND_HEADER",
    "PROGRESS_HEADER",
    "REASON_HEADER",
    "REPLAY_HEADER",
    "SOURCE_HEADER",
    "WORKER_PREFIX",
    "Header",
]

Header = tuple[str, bytes | None]  # Kafka allows a null header value; aiokafka reads it as None

# The pre-filter stage's own headers (on the relevant topic and on its dead letters).
WORKER_PREFIX: Final = "shellwatch."
KIND_HEADER: Final = "shellwatch.kind"
SOURCE_HEADER: Final = "shellwatch.source"
BROKER_TS_HEADER: Final = "shellwatch.broker_ts"
PROGRESS_HEADER: Final = "shellwatch.progress"
AS_OF_HEADER: Final = "shellwatch.as_of"  # on markers: when the fetch that found the partition caught up returned
REASON_HEADER: Final = "shellwatch.error.reason"  # on dead letters, beside the __connect.errors.* headers

# Set by ``shellwatch replay`` on every record it produces; the worker marks the alerts it raises as replayed.
REPLAY_HEADER: Final = "shellwatch-replay"

# Kafka Connect's dead-letter context (``org.apache.kafka.connect.runtime.errors.DeadLetterQueueReporter``).
ERRORS_PREFIX: Final = "__connect.errors."
ERRORS_TOPIC_HEADER: Final = "__connect.errors.topic"
ERRORS_PARTITION_HEADER: Final = "__connect.errors.partition"
ERRORS_OFFSET_HEADER: Final = "__connect.errors.offset"
ERRORS_STAGE_HEADER: Final = "__connect.errors.stage"
ERRORS_CLASS_HEADER: Final = "__connect.errors.exception.class.name"
ERRORS_MESSAGE_HEADER: Final = "__connect.errors.exception.message"
