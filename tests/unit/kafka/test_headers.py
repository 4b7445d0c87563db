"""Header names: the worker's own share one prefix; the replay header must not carry it."""

from __future__ import annotations

from shellwatch.kafka import headers
from shellwatch.kafka.headers import REPLAY_HEADER, WORKER_PREFIX
from shellwatch.worker.prefilter.routing import forward_headers


def test_worker_headers_share_the_prefix_the_forwarder_drops() -> None:
    own = [headers.KIND_HEADER, headers.SOURCE_HEADER, headers.BROKER_TS_HEADER, headers.PROGRESS_HEADER]
    own += [headers.AS_OF_HEADER, headers.REASON_HEADER]
    assert all(name.startswith(WORKER_PREFIX) for name in own)
    assert len(set(own)) == len(own)


def test_replay_header_survives_forwarding() -> None:
    kept = forward_headers([(REPLAY_HEADER, b"run-1")], kinds=b"process", topic="t", partition=0, offset=0, broker_ts=0)
    assert kept[0] == (REPLAY_HEADER, b"run-1")


def test_connect_error_headers_share_their_prefix() -> None:
    names = [getattr(headers, n) for n in headers.__all__ if n.startswith("ERRORS_") and n.endswith("_HEADER")]
    assert len(names) == 6 and all(name.startswith(headers.ERRORS_PREFIX) for name in names)
