"""Start-up checks and topic provisioning for the worker (any Kafka cluster, via the admin API).

The input topics must exist and be co-partitioned (equal partition counts, keyed by ``host.id``);
the worker refuses to start otherwise, and never creates them: only a full topic listing is requested,
so not even a broker with ``auto.create.topics.enable`` creates a missing one. Its own topics (relevant
events, alerts, dead letters) are created with the inputs' partition count, the configured replication
factor and ``min.insync.replicas`` when missing, and checked when present. The admin operations and
checks themselves are in :mod:`shellwatch.kafka.admin`.
"""

from __future__ import annotations

from collections.abc import Sequence

from shellwatch.core.pipeline import INPUTS
from shellwatch.kafka.admin import (
    PartitionMismatchError,
    create_topic,
    max_message_bytes,
    partition_counts,
    require_inputs_copartitioned,
)
from shellwatch.settings import KafkaSettings

__all__ = ["ensure_worker_topics"]


HEADER_ROOM_BYTES = 64 * 1024  # what forwarding and dead-lettering add: headers naming source and error


def _create(kafka: KafkaSettings, name: str, partitions: int, max_message_bytes: int) -> None:
    assert kafka.bootstrap_servers is not None
    config = {"max.message.bytes": str(max_message_bytes), **kafka.created_topic_configs}
    create_topic(
        kafka.bootstrap_servers,
        name,
        partitions,
        config,
        replication_factor=kafka.replication_factor,
        security=kafka.security,
        exist_ok=True,  # another worker starting at the same time may have created it first
    )


def ensure_worker_topics(kafka: KafkaSettings, inputs: Sequence[str] = INPUTS, *, timeout_s: float = 30.0) -> int:
    """Check the topics of ``inputs``, create the worker's topics if needed; returns the common partition count.

    The worker's topics accept records as large as the largest input topic does, plus header room.
    Raises :class:`~shellwatch.kafka.admin.KafkaAccessError` when the cluster refuses us,
    :class:`~shellwatch.kafka.admin.PartitionMismatchError` when an input topic is missing (the worker
    never creates one) or the inputs are not co-partitioned.
    """
    if kafka.bootstrap_servers is None:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set")
    bootstrap, security = kafka.bootstrap_servers, kafka.security
    counts = partition_counts(bootstrap, security, timeout_s)
    sources = [name for name, _ in kafka.source_topics(inputs)]
    partitions = require_inputs_copartitioned(counts, sources)
    # Forwarded records and dead letters are input records plus headers: their topics take as much.
    largest = max_message_bytes(bootstrap, security, sources, timeout_s) + HEADER_ROOM_BYTES
    for name in (kafka.relevant_topic, kafka.alerts_topic, kafka.dead_letter_topic):
        if name not in counts:
            _create(kafka, name, partitions, largest)
            counts = partition_counts(bootstrap, security, timeout_s)
        if name == kafka.relevant_topic and counts.get(name) != partitions:
            raise PartitionMismatchError(
                f"internal topic {name} has {counts[name]} partitions, the inputs {partitions}: "
                "delete it or use another SHELLWATCH_APP_ID"
            )
    return partitions
