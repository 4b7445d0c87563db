"""The Java Kafka client's default partitioner, so every producer we write co-partitions with Java ones.

A keyed record goes to ``(murmur2(key) & 0x7fffffff) % partitions``, where ``murmur2`` is the 32-bit
MurmurHash2 variant of ``org.apache.kafka.common.utils.Utils.murmur2`` (seed ``0x9747b28c``, little-endian
4-byte blocks). librdkafka calls this partitioner ``murmur2_random``; its default, ``consistent_random``,
places keys differently.
"""

from __future__ import annotations

__all__ = ["java_partition", "murmur2"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_R = 24
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of *data* as an unsigned 32-bit integer (Java's ``int`` result is its two's complement)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    tail = length - length % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> _R
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    remaining = length - tail
    if remaining == 3:
        h ^= data[tail + 2] << 16
    if remaining >= 2:
        h ^= data[tail + 1] << 8
    if remaining >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for a non-null *key*."""
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
