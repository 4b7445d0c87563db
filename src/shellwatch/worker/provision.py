"""Start-up checks and topic provisioning for the worker (any Kafka cluster, via the admin API).

The input topics must exist and be co-partitioned (equal partition counts, keyed by ``host.id``);
the worker refuses to start otherwise, and never creates them: only a full topic listing is requested,
so not even a broker with ``auto.create.topics.enable`` creates a missing one. Its own topics (relevant
events, alerts, dead letters) are created with the inputs' partition count, the configured replication
factor and ``min.insync.replicas`` when missing, and checked when present.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from shellwatch.kafka.admin import PartitionMismatchError
from shellwatch.kafka.security import KafkaSecurity
from shellwatch.local.kafka.topics import admin_conf, create_topic
from shellwatch.settings import KafkaSettings

__all__ = ["KafkaAccessError", "PartitionMismatchError", "ensure_worker_topics"]


_ATTEMPT_S = 2.0


class KafkaAccessError(RuntimeError):
    """The cluster could not be reached or refused us (authentication, authorization, TLS)."""


def _partition_counts(bootstrap: str, security: KafkaSecurity, timeout_s: float) -> dict[str, int]:
    errors: list[KafkaError] = []
    # Errors reach error_cb and the one-line reason; librdkafka's own log would repeat them at every retry.
    admin = AdminClient({**admin_conf(bootstrap, security), "error_cb": errors.append, "log_level": 2})
    deadline = time.monotonic() + timeout_s
    while True:  # short attempts: an authentication or TLS failure ends the wait at once (librdkafka retries)
        try:
            metadata = admin.list_topics(timeout=min(_ATTEMPT_S, max(deadline - time.monotonic(), 0.1)))
            break
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            if time.monotonic() >= deadline or any(e.code() in _REFUSALS for e in errors):
                raise KafkaAccessError(_access_failure(bootstrap, security, exc, errors)) from None
    return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}


_REFUSALS = {KafkaError._AUTHENTICATION: "authentication failed", KafkaError._SSL: "TLS handshake failed"}


def _access_failure(bootstrap: str, security: KafkaSecurity, exc: KafkaException, errors: list[KafkaError]) -> str:
    """A one-line reason, refusals first (librdkafka reports them to ``error_cb``); never a credential."""
    raised = [exc.args[0]] if exc.args and isinstance(exc.args[0], KafkaError) else []
    candidates: list[KafkaError] = [e for e in errors if e.code() in _REFUSALS] or errors or raised
    first = candidates[0] if candidates else None
    what = _REFUSALS.get(first.code(), "unreachable") if first is not None else "unreachable"
    detail = first.str() if first is not None else str(exc)
    return f"Kafka {what} at {bootstrap} (security protocol {security.protocol}): {detail}"


HEADER_ROOM_BYTES = 64 * 1024  # what forwarding and dead-lettering add: headers naming source and error


def _max_message_bytes(bootstrap: str, security: KafkaSecurity, topics: list[str], timeout_s: float) -> int:
    """The largest ``max.message.bytes`` among ``topics`` (what the inputs accept)."""
    admin = AdminClient(admin_conf(bootstrap, security))
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
    config = {"max.message.bytes": str(max_message_bytes), **kafka.created_topic_configs}
    try:
        create_topic(
            kafka.bootstrap_servers,
            name,
            partitions,
            config,
            replication_factor=kafka.replication_factor,
            security=kafka.security,
        )
    except KafkaException as exc:  # another worker starting at the same time created it first
        error = exc.args[0] if exc.args else None
        if not isinstance(error, KafkaError) or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def ensure_worker_topics(kafka: KafkaSettings, *, timeout_s: float = 30.0) -> int:
    """Check the inputs, create the worker's topics if needed; returns the common partition count.

    The worker's topics accept records as large as the largest input topic does, plus header room.
    Raises :class:`KafkaAccessError` when the cluster refuses us, :class:`PartitionMismatchError` when an
    input topic is missing (the worker never creates one) or the inputs are not co-partitioned.
    """
    if kafka.bootstrap_servers is None:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set")
    bootstrap, security = kafka.bootstrap_servers, kafka.security
    counts = _partition_counts(bootstrap, security, timeout_s)
    sources = [name for name, _ in kafka.source_topics]
    missing = [name for name in sources if name not in counts]
    if missing:
        raise PartitionMismatchError(
            f"input topic(s) missing: {', '.join(missing)} (the worker never creates input topics: "
            "create them with the partition count of the other input, or fix the topic settings)"
        )
    found = {name: counts[name] for name in sources}
    if len(set(found.values())) != 1:
        listing = ", ".join(f"{name}={count}" for name, count in found.items())
        raise PartitionMismatchError(
            f"input topics are not co-partitioned: partition counts differ ({listing}); "
            "network and process topics must have equal partition counts and be keyed by host.id"
        )
    partitions = next(iter(found.values()))
    # Forwarded records and dead letters are input records plus headers: their topics take as much.
    largest = _max_message_bytes(bootstrap, security, sources, timeout_s) + HEADER_ROOM_BYTES
    for name in (kafka.relevant_topic, kafka.alerts_topic, kafka.dead_letter_topic):
        if name not in counts:
            _create(kafka, name, partitions, largest)
            counts = _partition_counts(bootstrap, security, timeout_s)
        if name == kafka.relevant_topic and counts.get(name) != partitions:
            raise PartitionMismatchError(
                f"internal topic {name} has {counts[name]} partitions, the inputs {partitions}: "
                "delete it or use another SHELLWATCH_APP_ID"
            )
    return partitions
