"""Local single-node Apache Kafka (KRaft) for tests and demos: jars fetched from Maven Central."""

from shellwatch.local.kafka.broker import BrokerStartError, LocalKafka
from shellwatch.local.kafka.jars import KAFKA_VERSION, KafkaFetchError, fetch_jars, jars_dir

__all__ = [
    "KAFKA_VERSION",
    "BrokerStartError",
    "KafkaFetchError",
    "LocalKafka",
    "fetch_jars",
    "jars_dir",
]
