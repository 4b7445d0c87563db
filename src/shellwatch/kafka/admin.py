"""Topic administration against any Kafka cluster: creation, existence and partition counts, co-partitioning.

The sequence join pairs a host's connections with its execs inside one partition of the relevant topic,
which is only sound when every source topic and the relevant topic have the same partition count (and
producers use the Java partitioner). The worker refuses to start otherwise.

Two clients: confluent-kafka's AdminClient (synchronous: provisioning at start-up, topic creation for tests
and the demo) and aiokafka's (the pre-filter stage's start-up check, inside its event loop). Neither ever
names a topic that may be missing in a metadata request: such a request asks the broker to auto-create the
topics it names, so naming a missing one could create it with the broker's defaults. Partition counts come
from a full topic listing (confluent-kafka) or from describing only the topics that exist (aiokafka).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from shellwatch.errors import KafkaAccessError, PartitionMismatchError
from shellwatch.kafka.security import KafkaSecurity, aiokafka_kwargs, librdkafka_conf

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "KafkaAccessError",
    "PartitionMismatchError",
    "admin_conf",
    "check_partitions",
    "create_topic",
    "max_message_bytes",
    "partition_counts",
    "require_copartitioned",
    "require_inputs_copartitioned",
]

DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # the broker's default message.max.bytes
_ATTEMPT_S = 2.0


def admin_conf(bootstrap: str, security: KafkaSecurity | None = None) -> dict[str, str | int]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": 5000,
        "log_level": 3,  # errors only: the readiness loop expects transient failures
        **librdkafka_conf(security or KafkaSecurity()),
    }


# --- creation -------------------------------------------------------------------------------------------


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    config: Mapping[str, str] | None = None,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
    security: KafkaSecurity | None = None,
    exist_ok: bool = False,
) -> None:
    """Create topic *name* and wait until every partition has a leader in the metadata.

    With ``exist_ok``, a topic that already exists (say another worker starting at the same time created
    it first) is left as it is and not waited for; otherwise that raises :class:`KafkaException`.
    """
    admin = AdminClient(admin_conf(bootstrap, security))
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication_factor,
        config=dict(config or {}),
    )
    futures = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)
    try:
        futures[name].result(timeout=timeout)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if exist_ok and isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=name, timeout=max(0.5, deadline - time.monotonic()))
        tmd = md.topics.get(name)
        if (
            tmd is not None
            and tmd.error is None
            and len(tmd.partitions) == partitions
            and all(p.leader >= 0 for p in tmd.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name!r} created but partitions have no leader after {timeout}s")
        time.sleep(0.05)


# --- existence, partition counts, configuration ---------------------------------------------------------


def partition_counts(bootstrap: str, security: KafkaSecurity, timeout_s: float) -> dict[str, int]:
    """Partition count of every topic the cluster lists (a full listing: no topic is named, none created).

    Raises :class:`KafkaAccessError` when the cluster stays unreachable for ``timeout_s`` or refuses us.
    """
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


async def check_partitions(
    bootstrap: str, topics: Iterable[str], *, security: KafkaSecurity | None = None, retry_backoff_ms: int = 100
) -> dict[str, int]:
    """Partition count of each of *topics* that exists; missing topics are absent from the result (aiokafka)."""
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="shellwatch-forwarder-admin",
        retry_backoff_ms=retry_backoff_ms,
        **aiokafka_kwargs(security or KafkaSecurity()),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [t for t in wanted if t in existing]
        described: list[dict[str, Any]] = await admin.describe_topics(present) if present else []
    finally:
        await admin.close()
    return {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}


def max_message_bytes(bootstrap: str, security: KafkaSecurity, topics: Sequence[str], timeout_s: float) -> int:
    """The largest ``max.message.bytes`` among ``topics`` (existing ones), else the broker's default."""
    admin = AdminClient(admin_conf(bootstrap, security))
    futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
    sizes = []
    for future in futures.values():
        entries = future.result(timeout=timeout_s)
        entry = entries.get("max.message.bytes")
        if entry is not None and entry.value is not None:
            sizes.append(int(entry.value))
    return max(sizes, default=DEFAULT_MAX_MESSAGE_BYTES)


# --- co-partitioning ------------------------------------------------------------------------------------


def _listing(counts: Mapping[str, int], topics: Iterable[str]) -> str:
    """``name=count`` of each topic (``name=missing`` when absent), in order."""
    return ", ".join(f"{t}={counts.get(t, 'missing')}" for t in topics)


def _common_count(counts: Mapping[str, int], topics: Iterable[str]) -> int | None:
    """The partition count every one of *topics* has; None when one is missing or the counts differ."""
    found = {counts.get(t) for t in topics}
    if len(found) != 1:
        return None
    return found.pop()


def require_inputs_copartitioned(counts: Mapping[str, int], source_topics: Sequence[str]) -> int:
    """The common partition count of the input topics, else :class:`PartitionMismatchError`.

    Used before the worker creates its own topics: only the inputs must exist (the worker never creates one).
    """
    missing = [name for name in source_topics if name not in counts]
    if missing:
        raise PartitionMismatchError(
            f"input topic(s) missing: {', '.join(missing)} (the worker never creates input topics: "
            "create them with the partition count of the other input, or fix the topic settings)"
        )
    common = _common_count(counts, source_topics)
    if common is None:
        listing = _listing(counts, dict.fromkeys(source_topics))
        raise PartitionMismatchError(
            f"input topics are not co-partitioned: partition counts differ ({listing}); "
            "network and process topics must have equal partition counts and be keyed by host.id"
        )
    return common


def require_copartitioned(
    counts: Mapping[str, int], *, source_topics: Iterable[str], relevant_topic: str, dead_letter_topic: str
) -> int:
    """The common partition count of the sources and the relevant topic, else :class:`PartitionMismatchError`.

    The dead-letter topic must exist; its partition count is free.
    """
    joined = [*dict.fromkeys(source_topics), relevant_topic]
    listing = _listing(counts, joined)
    common = _common_count(counts, joined)
    if common is None:
        raise PartitionMismatchError(
            "source topics and the relevant topic must exist with equal partition counts "
            f"(co-partitioned by host.id), found: {listing}"
        )
    if dead_letter_topic not in counts:
        raise PartitionMismatchError(f"dead-letter topic {dead_letter_topic} is missing (topics: {listing})")
    return common
