"""Local single-node Apache Kafka (KRaft) for tests and demos: jars fetched from Maven Central."""

from shellwatch.local.kafka.broker import BrokerStartError, LocalKafka
from shellwatch.local.kafka.jars import KAFKA_VERSION, KafkaFetchError, fetch_jars, jars_dir
from shellwatch.local.kafka.topics import create_topic

__all__ = [
    "KAFKA_VERSION",
    "BrokerStartError",
    "KafkaFetchError",
    "LocalKafka",
    "create_topic",
    "fetch_jars",
    "jars_dir",
]
