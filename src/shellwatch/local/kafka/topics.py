"""Topic administration against any Kafka cluster (confluent-kafka AdminClient)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka.admin import AdminClient, NewTopic

from shellwatch.kafka.security import KafkaSecurity, librdkafka_conf

__all__ = ["admin_conf", "create_topic"]


def admin_conf(bootstrap: str, security: KafkaSecurity | None = None) -> dict[str, str | int]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": 5000,
        "log_level": 3,  # errors only: the readiness loop expects transient failures
        **librdkafka_conf(security or KafkaSecurity()),
    }


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    config: Mapping[str, str] | None = None,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
    security: KafkaSecurity | None = None,
) -> None:
    """Create topic *name* and wait until every partition has a leader in the metadata."""
    admin = AdminClient(admin_conf(bootstrap, security))
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replication_factor,
        config=dict(config or {}),
    )
    futures = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)
    futures[name].result(timeout=timeout)
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
