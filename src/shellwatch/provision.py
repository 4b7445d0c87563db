"""Start-up checks and topic provisioning for the worker (any Kafka cluster, via the admin API).

The input topics must exist and be co-partitioned (equal partition counts, keyed by ``host.id``);
the worker refuses to start otherwise. Its own topics (relevant events, alerts, dead letters) are
created with the inputs' partition count when missing, and checked when present.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from shellwatch.forwarder_topics import PartitionMismatchError
from shellwatch.localkafka.topics import admin_conf, create_topic
from shellwatch.settings import KafkaSettings

__all__ = ["PartitionMismatchError", "ensure_worker_topics"]


def _partition_counts(bootstrap: str, timeout_s: float) -> dict[str, int]:
    metadata = AdminClient(admin_conf(bootstrap)).list_topics(timeout=timeout_s)
    return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}


HEADER_ROOM_BYTES = 64 * 1024  # what forwarding and dead-lettering add: headers naming source and error


def _max_message_bytes(bootstrap: str, topics: list[str], timeout_s: float) -> int:
    """The largest ``max.message.bytes`` among ``topics`` (what the inputs accept)."""
    admin = AdminClient(admin_conf(bootstrap))
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
    sizes = []
    for future in futures.values():
        entries = future.result(timeout=timeout_s)
        entry = entries.get("max.message.bytes")
        if entry is not None and entry.value is not None:
            sizes.append(int(entry.value))
    return max(sizes, default=1_048_588)


def _create(kafka: KafkaSettings, name: str, partitions: int, max_message_bytes: int) -> None:
    assert kafka.bootstrap_servers is not None
    config = {"max.message.bytes": str(max_message_bytes)}
    try:
        create_topic(kafka.bootstrap_servers, name, partitions, config, replication_factor=kafka.replication_factor)
    except KafkaException as exc:  # another worker starting at the same time created it first
        error = exc.args[0] if exc.args else None
        if not isinstance(error, KafkaError) or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def ensure_worker_topics(kafka: KafkaSettings, *, timeout_s: float = 30.0) -> int:
    """Check the inputs, create the worker's topics if needed; returns the common partition count.

    The worker's topics accept records as large as the largest input topic does, plus header room.
    """
    if kafka.bootstrap_servers is None:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set")
    counts = _partition_counts(kafka.bootstrap_servers, timeout_s)
    sources = [name for name, _ in kafka.source_topics]
    missing = [name for name in sources if name not in counts]
    if missing:
        raise PartitionMismatchError(f"input topic(s) missing: {', '.join(missing)}")
    found = {name: counts[name] for name in sources}
    if len(set(found.values())) != 1:
        listing = ", ".join(f"{name}={count}" for name, count in found.items())
        raise PartitionMismatchError(
            f"input topics are not co-partitioned: partition counts differ ({listing}); "
            "network and process topics must have equal partition counts and be keyed by host.id"
        )
    partitions = next(iter(found.values()))
    # Forwarded records and dead letters are input records plus headers: their topics take as much.
    largest = _max_message_bytes(kafka.bootstrap_servers, sources, timeout_s) + HEADER_ROOM_BYTES
    for name in (kafka.relevant_topic, kafka.alerts_topic, kafka.dead_letter_topic):
        if name not in counts:
            _create(kafka, name, partitions, largest)
            counts = _partition_counts(kafka.bootstrap_servers, timeout_s)
        if name == kafka.relevant_topic and counts.get(name) != partitions:
            raise PartitionMismatchError(
                f"internal topic {name} has {counts[name]} partitions, the inputs {partitions}: "
                "delete it or use another SHELLWATCH_APP_ID"
            )
    return partitions
