"""Backoff delays, the cluster reachability record and which Kafka errors an outage explains."""

from __future__ import annotations

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)

from shellwatch.kafka.reconnect import Backoff, ClusterReachability, is_transient


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_reset() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert not backoff.failing
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.failing
    backoff.reset()
    assert backoff.next() == 0.5


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0.8), (0.5, 1.0), (0.999999, 1.2)])
def test_backoff_jitter_spreads_each_delay(draw: float, expected: float) -> None:
    backoff = Backoff(1.0, 10.0, jitter=0.2, rng=lambda: draw)
    assert backoff.next() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("initial", "maximum", "factor", "jitter"), [(0, 1, 2, 0), (2, 1, 2, 0), (1, 2, 0.5, 0), (1, 2, 2, 1)]
)
def test_backoff_rejects_nonsense(initial: float, maximum: float, factor: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="invalid backoff"):
        Backoff(initial, maximum, factor, jitter)


def test_reachability_follows_the_latest_outcome() -> None:
    now = [10.0]
    cluster = ClusterReachability(clock=lambda: now[0])
    assert cluster.reachable and cluster.unreachable_since_s is None
    cluster.failed()
    now[0] = 15.0
    cluster.failed()  # still the same outage: it began at the first failure
    assert not cluster.reachable and cluster.unreachable_since_s == 10.0 and cluster.failures == 2
    cluster.succeeded()
    assert cluster.reachable and cluster.unreachable_since_s is None
    now[0] = 30.0
    cluster.failed()
    assert cluster.unreachable_since_s == 30.0


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (KafkaConnectionError("refused"), True),
        (NodeNotReadyError("node 1"), True),
        (KafkaTimeoutError(), True),
        (TimeoutError(), True),
        (NotLeaderForPartitionError(), True),  # retriable broker error
        (MessageSizeTooLargeError(), False),
        (TopicAuthorizationFailedError(), False),
        (ValueError("bad alert"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
