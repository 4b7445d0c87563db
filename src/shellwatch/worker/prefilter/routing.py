"""Where the forwarder puts a record, and the headers it adds: pure functions, no I/O.

The header names and what they carry are in :mod:`shellwatch.kafka.headers`. Input headers starting with
``shellwatch.`` are dropped from forwarded records, so an input record cannot pose as a progress marker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shellwatch.kafka.headers import (
    AS_OF_HEADER,
    BROKER_TS_HEADER,
    KIND_HEADER,
    PROGRESS_HEADER,
    SOURCE_HEADER,
    WORKER_PREFIX,
    Header,
)
from shellwatch.kafka.partitioning import java_partition

__all__ = [
    "SourceKinds",
    "forward_headers",
    "forward_target",
    "marker_headers",
]

SourceKinds = tuple[str, ...]  # the inputs (event categories) a source topic carries: one, or several (mixed)


def forward_target(
    host_id: str | None, record_key: bytes | None, source_partition: int, partitions: int
) -> tuple[bytes, int]:
    """Key and relevant-topic partition of a forwarded record.

    Keyed by ``host.id`` (UTF-8; lone surrogates become ``?`` as Java's ``getBytes`` does). Input already
    keyed by that host id keeps its partition number; otherwise the Java partitioner places the host id.
    Without a host id the record keeps its key (``b""`` if none) and its partition number.
    """
    if host_id is None:
        return record_key or b"", source_partition % partitions
    key = host_id.encode("utf-8", "replace")
    if record_key == key:
        return key, source_partition % partitions
    return key, java_partition(key, partitions)


def forward_headers(
    headers: Iterable[Header], *, kinds: bytes, topic: str, partition: int, offset: int, broker_ts: int
) -> list[Header]:
    """The record's own headers (minus ``shellwatch.*``) plus its kinds and where it came from."""
    kept = [h for h in headers if not h[0].startswith(WORKER_PREFIX)]
    kept += [
        (KIND_HEADER, kinds),
        (SOURCE_HEADER, f"{topic}/{partition}/{offset}".encode()),
        (BROKER_TS_HEADER, str(broker_ts).encode()),
    ]
    return kept


def marker_headers(kinds: Sequence[str], topic: str, partition: int, as_of_ms: int) -> list[Header]:
    """A progress marker: the source partition of inputs ``kinds`` is caught up as of ``as_of_ms``."""
    return [
        (PROGRESS_HEADER, ",".join(kinds).encode()),
        (SOURCE_HEADER, f"{topic}/{partition}".encode()),
        (AS_OF_HEADER, str(as_of_ms).encode()),
    ]
