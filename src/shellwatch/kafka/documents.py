"""Producing ECS documents to the input topics and reading alerts back (demo, tests, replays).

Documents are keyed by ``host.id`` and partitioned like the Java client (``murmur2_random``), so
they land where Elastic Agent's Kafka output would put them; routing is by ``event.category``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer

from shellwatch.ecs.fields import keyword_values, single_keyword
from shellwatch.formats.alert_codec import decode_alert
from shellwatch.kafka.security import KafkaSecurity, librdkafka_conf

__all__ = ["AlertReader", "produce_documents"]


def produce_documents(
    bootstrap: str,
    documents: Iterable[Mapping[str, Any] | bytes],
    *,
    network_topic: str,
    process_topic: str,
    security: KafkaSecurity | None = None,
    producer_config: Mapping[str, Any] | None = None,
    other_topics: Mapping[str, str] | None = None,
) -> int:
    """Produce each document to its kind's topic, in order; returns how many were sent (all acknowledged).

    Network events go to ``network_topic``, process events to ``process_topic``, events of another category
    to its topic in ``other_topics`` (category -> topic), anything else to ``process_topic``.

    The producer is idempotent (``acks=all``): the detector expects each host's events of one topic partition
    in the order they were written, and a plain producer that retries a batch (a partition's leader not known
    yet on a topic just created, a broker restart) writes it after the batches sent behind it, so a partition's
    first records can land seconds of event time out of order. ``producer_config``: further librdkafka settings.
    """
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "acks": "all",
            "enable.idempotence": True,  # retries keep the order (see above)
            # errors only: an idempotent producer warns while a broker just started loads its coordinator, and it
            # retries; a record it cannot deliver is reported by its delivery callback and raised below
            "log_level": 3,
            **librdkafka_conf(security or KafkaSecurity()),
            **(producer_config or {}),
        }
    )
    failures: list[str] = []

    def on_delivery(error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    sent = 0
    for document in documents:
        raw = document if isinstance(document, bytes) else orjson.dumps(document)
        doc = orjson.loads(raw) if isinstance(document, bytes) else document
        categories = keyword_values(doc, "event.category")
        topic = _topic(categories, network_topic, process_topic, other_topics or {})
        host_id = single_keyword(doc, "host.id")
        producer.produce(topic, key=host_id.encode() if host_id else None, value=raw, on_delivery=on_delivery)
        producer.poll(0)
        sent += 1
    remaining = producer.flush(30)
    if remaining or failures:
        raise RuntimeError(f"{remaining} records undelivered, failures: {failures[:3]}")
    return sent


def _topic(categories: tuple[str, ...], network: str, process: str, others: Mapping[str, str]) -> str:
    if "network" in categories:
        return network
    if "process" in categories:
        return process
    return next((others[c] for c in sorted(categories) if c in others), process)


class AlertReader:
    """Reads alert documents from the alerts topic (from the beginning, its own consumer group)."""

    def __init__(self, bootstrap: str, topic: str, *, security: KafkaSecurity | None = None) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"shellwatch-reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **librdkafka_conf(security or KafkaSecurity()),
            }
        )
        self._consumer.subscribe([topic])

    def read(self, *, until: int, timeout_s: float, settle_s: float = 0.0) -> list[dict[str, Any]]:
        """Alerts until ``until`` distinct ids arrived (then ``settle_s`` more) or ``timeout_s`` passed."""
        alerts: list[dict[str, Any]] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout_s
        settle_end: float | None = None
        while time.monotonic() < (settle_end if settle_end is not None else deadline):
            message = self._consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            alert = decode_alert(message.value() or b"{}")
            alerts.append(alert)
            seen.add(str(alert.get("event", {}).get("id")))
            if len(seen) >= until and settle_end is None:
                settle_end = min(deadline, time.monotonic() + settle_s)
        return alerts

    def close(self) -> None:
        self._consumer.close()
