"""Start-up check of the forwarder's topics: they exist, and sources and output are co-partitioned.

The sequence join pairs a host's connections with its execs inside one partition of the relevant topic,
which is only sound when every source topic and the relevant topic have the same partition count (and
producers use the Java partitioner). The worker refuses to start otherwise.

Only metadata for topics that already exist is requested: aiokafka's metadata requests ask the broker to
auto-create the topics they name, so naming a missing one could create it with the broker's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from shellwatch.kafka.security import KafkaSecurity, aiokafka_kwargs

__all__ = ["PartitionMismatchError", "check_partitions", "require_copartitioned"]


class PartitionMismatchError(RuntimeError):
    """A source, relevant or dead-letter topic is missing, or the partition counts differ."""


async def check_partitions(
    bootstrap: str, topics: Iterable[str], *, security: KafkaSecurity | None = None
) -> dict[str, int]:
    """Partition count of each of *topics* that exists; missing topics are absent from the result."""
    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="shellwatch-forwarder-admin",
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


def _count(counts: Mapping[str, int], topic: str) -> str:
    return str(counts[topic]) if topic in counts else "missing"


def require_copartitioned(
    counts: Mapping[str, int], *, source_topics: Iterable[str], relevant_topic: str, dead_letter_topic: str
) -> int:
    """The common partition count of the sources and the relevant topic, else :class:`PartitionMismatchError`."""
    joined = [*dict.fromkeys(source_topics), relevant_topic]
    listing = ", ".join(f"{t}={_count(counts, t)}" for t in joined)
    if any(t not in counts for t in joined) or len({counts[t] for t in joined}) != 1:
        raise PartitionMismatchError(
            "source topics and the relevant topic must exist with equal partition counts "
            f"(co-partitioned by host.id), found: {listing}"
        )
    if dead_letter_topic not in counts:
        raise PartitionMismatchError(f"dead-letter topic {dead_letter_topic} is missing (topics: {listing})")
    return counts[relevant_topic]
