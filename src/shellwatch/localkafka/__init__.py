"""Local single-node Apache Kafka (KRaft) for tests and demos: jars fetched from Maven Central."""

from shellwatch.localkafka.broker import (
    KAFKA_VERSION,
    BrokerStartError,
    KafkaFetchError,
    LocalKafka,
    create_topic,
    fetch_jars,
    jars_dir,
)

__all__ = [
    "KAFKA_VERSION",
    "BrokerStartError",
    "KafkaFetchError",
    "LocalKafka",
    "create_topic",
    "fetch_jars",
    "jars_dir",
]
