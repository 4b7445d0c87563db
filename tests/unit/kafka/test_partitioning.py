"""java_partition is the Java client's default partitioner (Kafka's vectors, aiokafka); the forwarder's placement."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from shellwatch.kafka.partitioning import java_partition, murmur2
from shellwatch.worker.prefilter.routing import forward_target

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (Java's signed int results).
KAFKA_UTILS_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]

# Partition out of 1000 chosen by Java's org.apache.kafka.clients.producer.Partitioner, as recorded in
# kafka-python's test_murmur2_java_compatibility (the lineage of aiokafka's partitioner).
JAVA_PARTITION_OF_1000 = [
    (b"", 681),
    (b"a", 524),
    (b"ab", 434),
    (b"abc", 107),
    (b"123456789", 566),
    (b"\x00 ", 742),
]


@pytest.mark.parametrize(("key", "signed"), KAFKA_UTILS_VECTORS)
def test_murmur2_matches_kafka_utils(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@pytest.mark.parametrize(("key", "partition"), JAVA_PARTITION_OF_1000)
def test_java_partition_vectors(key: bytes, partition: int) -> None:
    assert java_partition(key, 1000) == partition


def test_every_tail_length_and_high_bytes() -> None:
    for length in range(0, 9):
        key = bytes(range(0xF8, 0xF8 + length))
        assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafka(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(max_size=100), st.integers(min_value=1, max_value=1000))
def test_partition_equals_aiokafka_default_partitioner(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    assert java_partition(key, partitions) == DefaultPartitioner()(key, all_partitions, all_partitions)


@given(st.text(max_size=60))
def test_host_ids_as_utf8(host_id: str) -> None:
    key = host_id.encode("utf-8", "surrogatepass")
    assert 0 <= java_partition(key, 12) < 12
    assert murmur2(key) == aiokafka_murmur2(key)


@pytest.mark.parametrize("partitions", [0, -3])
def test_partition_count_must_be_positive(partitions: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        java_partition(b"host", partitions)


# The forwarder's choice of key and partition for the relevant topic (shellwatch.worker.prefilter.routing).


def test_keyed_input_keeps_its_partition() -> None:
    # co-partitioned input stays where it is, even if another partitioner put it there
    assert forward_target("host-a", b"host-a", 2, 3) == (b"host-a", 2)


@pytest.mark.parametrize("record_key", [None, b"", b"wrong-key", b"HOST-A"])
def test_unkeyed_or_wrongly_keyed_input_is_placed_by_host_id(record_key: bytes | None) -> None:
    assert forward_target("host-a", record_key, 0, 7) == (b"host-a", java_partition(b"host-a", 7))


@pytest.mark.parametrize(("record_key", "expected_key"), [(b"legacy", b"legacy"), (None, b"")])
def test_without_host_id_the_record_keeps_key_and_partition(record_key: bytes | None, expected_key: bytes) -> None:
    assert forward_target(None, record_key, 4, 6) == (expected_key, 4)


def test_host_id_is_utf8_and_lone_surrogates_do_not_raise() -> None:
    assert forward_target("hôte", None, 0, 5)[0] == "hôte".encode()
    key, partition = forward_target("bad\udcff", None, 0, 5)
    assert key == b"bad?"  # as Java's String.getBytes(UTF_8) does
    assert partition == java_partition(b"bad?", 5)


@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=63), st.integers(min_value=1, max_value=64))
def test_target_partition_is_always_valid(host_id: str, source: int, partitions: int) -> None:
    source %= partitions
    key, partition = forward_target(host_id, None, source, partitions)
    assert 0 <= partition < partitions
    assert forward_target(host_id, key, source, partitions) == (key, source)
