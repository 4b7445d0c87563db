"""One JoinGroup per join for aiokafka consumers that offer several assignors (the prefilter stage's group).

aiokafka 0.14's ``CoordinatorGroupRebalance.perform_group_join`` sends its JoinGroup request from inside its
loop over the consumer's assignors: a consumer offering range and round robin sends one request offering
``[range]``, waits for that rebalance to complete, then sends a second offering ``[range, roundrobin]``
(upstream: aio-libs/aiokafka pull request 1168). The coordinator treats a known member that rejoins with
other protocol metadata as a change and starts another rebalance, so two members that start together can
keep each other rebalancing: a member whose
SyncGroup failed because the other's second request started a rebalance rejoins with its first request,
whose metadata differs from what the group holds, which starts the next rebalance, which fails the other's
SyncGroup, and so on. Each member then logs "Joined group" for every other generation and is rarely synced:
in one run of the backlog fault test the prefilter group went through 1,609 generations in 3 min 50 s with
29 successful SyncGroups, all the leader's; the follower's ``consumer.start()``, which returns with the first
assignment, never returned, so the partitions assigned to it were read by no one, and 1,627 of 2,460 alerts
were missing at the timeout. Members whose requests happen to fall into step settle, so the loop is
intermittent (and may end by itself after minutes).

:func:`install_single_join_group` makes every aiokafka group coordinator of the process answer such a
partial request itself, without sending it: only the request offering every assignor reaches the broker.
Consumers with one assignor (Faust's) never send a partial request and are not affected, and neither are
consumers of an aiokafka that sends a single request.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance, GroupCoordinator
from aiokafka.protocol.group import JoinGroupRequest

__all__ = ["install_single_join_group", "is_partial_join"]

log = logging.getLogger(__name__)

_PATCHED: Final = "_shellwatch_single_join_group"


@dataclass(frozen=True, slots=True)
class _NotSent:
    """Stands for the response to a partial JoinGroup request: no error, and nothing else is read from it
    (the loop that sent it only checks for MEMBER_ID_REQUIRED before it sends the complete request)."""

    error_code: int = 0


def is_partial_join(request: Any, assignors: int) -> bool:
    """Whether ``request`` is a JoinGroup offering fewer protocols than the consumer's ``assignors``."""
    if not isinstance(request, JoinGroupRequest):
        return False
    protocols = getattr(request, "_group_protocols", None)
    return protocols is not None and len(protocols) < assignors


def install_single_join_group() -> bool:
    """Keep partial JoinGroup requests of every aiokafka consumer of this process from reaching the broker.

    Idempotent. Returns whether it is in place: ``False`` (with a warning) when this aiokafka's group
    coordinator is not the one this was written for, in which case consumers keep aiokafka's behaviour.
    """
    current = GroupCoordinator._send_req
    if getattr(current, _PATCHED, False):
        return True
    if not (
        inspect.iscoroutinefunction(current)
        and list(inspect.signature(current).parameters) == ["self", "request"]
        and inspect.iscoroutinefunction(getattr(CoordinatorGroupRebalance, "perform_group_join", None))
        and isinstance(getattr(JoinGroupRequest("g", 0, 0, "", "", "consumer", []), "_group_protocols", None), list)
    ):
        log.warning("aiokafka's group coordinator is not the one expected; a join may send several JoinGroups")
        return False
    original: Callable[[Any, Any], Awaitable[Any]] = current

    @functools.wraps(original)
    async def send_req_skipping_partial_joins(self: Any, request: Any) -> Any:
        if is_partial_join(request, len(getattr(self, "_assignors", ()))):
            return _NotSent()
        return await original(self, request)

    setattr(send_req_skipping_partial_joins, _PATCHED, True)
    GroupCoordinator._send_req = send_req_skipping_partial_joins
    return True
