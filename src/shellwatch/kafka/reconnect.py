"""Riding out a broker outage: retry backoff, aiokafka's missing reconnect backoff, and whether the cluster answers.

aiokafka 0.14 has ``retry_backoff_ms`` but no ``reconnect_backoff_ms``. When every broker refuses connections,
its producer's sender (partitions without a known leader) and its fetcher (stale metadata) ask for a metadata
refresh again as soon as the previous one failed, and a refresh fails at once (connection refused): a stopped
broker costs each client hundreds of attempts a second, each logging two ERROR lines, at a third of a core.
Faust's consumer and producer are aiokafka clients too, and Faust passes no backoff setting to them at all.

:func:`install_metadata_backoff` gives every aiokafka client of the process the reconnect backoff it lacks: a
metadata refresh that reached no broker is followed by a wait (exponential with jitter, per client, reset by
the next success) before its result is handed to whoever asked, so those loops turn at the backoff's pace.
It also tells :data:`CLUSTER` (which the worker's ``/readyz`` reads) about every refresh that reached no broker,
and about the first refresh or connection that succeeds after one.

:class:`Backoff` is the delay sequence used here and by the worker's own retries; :func:`is_transient`
tells a broker that is away from a request that can never succeed.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, NodeNotReadyError

__all__ = [
    "CLUSTER",
    "Backoff",
    "ClusterReachability",
    "install_metadata_backoff",
    "is_transient",
]

log = logging.getLogger(__name__)

METADATA_BACKOFF_INITIAL_MS: Final = 200
METADATA_BACKOFF_MAX_MS: Final = 5_000


@dataclass(slots=True)
class Backoff:
    """Delays in seconds: ``initial_s``, then times ``factor`` each call up to ``max_s``, each within ±``jitter``
    (a fraction) so that many clients do not retry in step. :meth:`reset` after a success."""

    initial_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 0.2
    rng: Callable[[], float] = field(default=random.random, repr=False)  # uniform in [0, 1)
    _next_s: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid backoff: {self.initial_s}..{self.max_s} s, x{self.factor}, ±{self.jitter}")

    def next(self) -> float:
        base = self.initial_s if self._next_s is None else self._next_s
        self._next_s = min(self.max_s, base * self.factor)
        return base * (1 + self.jitter * (2 * self.rng() - 1))

    def reset(self) -> None:
        self._next_s = None

    @property
    def failing(self) -> bool:
        """Whether :meth:`next` was called since the last :meth:`reset`."""
        return self._next_s is not None


class ClusterReachability:
    """Whether the Kafka cluster answers: no, from a metadata refresh that reached none of the brokers a client
    knows, until a refresh or a connection of any client of this process succeeds.

    Thread-safe: Faust's consumer runs its aiokafka client in a thread of its own. Times are
    ``time.monotonic()`` seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_success_s: float | None = None
        self._unreachable_since_s: float | None = None
        self.failures = 0  # refreshes that reached no broker, since the process started

    def succeeded(self) -> None:
        with self._lock:
            self._last_success_s = self._clock()
            self._unreachable_since_s = None

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            if self._unreachable_since_s is None:
                self._unreachable_since_s = self._clock()

    @property
    def reachable(self) -> bool:
        return self._unreachable_since_s is None

    @property
    def unreachable_since_s(self) -> float | None:
        """When the current outage was first noticed; ``None`` while the cluster answers."""
        return self._unreachable_since_s


CLUSTER: Final = ClusterReachability()


def is_transient(exc: BaseException) -> bool:
    """A failure a working cluster will not repeat: no connection, no node, a timeout, a retriable broker error."""
    if isinstance(exc, (TimeoutError, KafkaConnectionError, NodeNotReadyError, KafkaTimeoutError)):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


_PATCHED: Final = "_shellwatch_metadata_backoff"
_BACKOFF_ATTRIBUTE: Final = "_shellwatch_backoff"


def install_metadata_backoff(
    *,
    initial_ms: int = METADATA_BACKOFF_INITIAL_MS,
    max_ms: int = METADATA_BACKOFF_MAX_MS,
    cluster: ClusterReachability = CLUSTER,
) -> bool:
    """Make every aiokafka client of this process wait after a metadata refresh that reached no broker.

    Idempotent (a second call changes nothing). Returns whether the backoff is in place: ``False`` (with a
    warning) when this aiokafka's ``AIOKafkaClient._metadata_update`` is not the coroutine this was written
    for, in which case clients keep aiokafka's own behaviour.
    """
    current, get_conn = AIOKafkaClient._metadata_update, AIOKafkaClient._get_conn
    if getattr(current, _PATCHED, False):
        return True
    if not (
        _is_coroutine(current, ["self", "cluster_metadata", "topics"])
        and _is_coroutine(get_conn, ["self", "node_id", "group", "no_hint"])
    ):
        log.warning("aiokafka's metadata refresh is not the one expected; its reconnect backoff is not installed")
        return False
    original: Callable[[Any, Any, Any], Awaitable[bool]] = current
    original_get_conn: Callable[..., Awaitable[Any]] = get_conn

    @functools.wraps(original)
    async def metadata_update_with_backoff(self: Any, cluster_metadata: Any, topics: Any) -> bool:
        updated = await original(self, cluster_metadata, topics)
        backoff: Backoff | None = getattr(self, _BACKOFF_ATTRIBUTE, None)
        if backoff is None:
            backoff = Backoff(initial_ms / 1000, max_ms / 1000)
            setattr(self, _BACKOFF_ATTRIBUTE, backoff)
        if updated:
            backoff.reset()
            cluster.succeeded()
        else:  # no broker answered (or none listed): callers would ask again at once
            cluster.failed()
            await asyncio.sleep(backoff.next())
        return updated

    @functools.wraps(original_get_conn)
    async def get_conn_noting_success(self: Any, node_id: Any, **kwargs: Any) -> Any:
        conn = await original_get_conn(self, node_id, **kwargs)
        if conn is not None and not cluster.reachable:  # a broker accepted a connection: the outage is over
            cluster.succeeded()
        return conn

    setattr(metadata_update_with_backoff, _PATCHED, True)
    AIOKafkaClient._metadata_update = metadata_update_with_backoff
    AIOKafkaClient._get_conn = get_conn_noting_success
    return True


def _is_coroutine(function: Any, parameters: list[str]) -> bool:
    return inspect.iscoroutinefunction(function) and list(inspect.signature(function).parameters) == parameters
