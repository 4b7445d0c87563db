"""Which JoinGroup requests the single-join patch keeps from the broker, and that the others still go out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import GroupCoordinatorNotAvailableError
from aiokafka.protocol.group import JoinGroupRequest, LeaveGroupRequest

from shellwatch.kafka.group_join import install_single_join_group, is_partial_join


def _join(*protocols: str) -> JoinGroupRequest:
    return JoinGroupRequest("g", 10_000, 10_000, "", "", "consumer", [(name, b"") for name in protocols])


@pytest.mark.parametrize(
    ("protocols", "assignors", "partial"),
    [(("range",), 2, True), (("range", "roundrobin"), 2, False), (("range",), 1, False), ((), 1, True)],
)
def test_a_join_offering_fewer_protocols_than_assignors_is_partial(
    protocols: tuple[str, ...], assignors: int, partial: bool
) -> None:
    assert is_partial_join(_join(*protocols), assignors) is partial


def test_other_requests_are_never_partial() -> None:
    assert not is_partial_join(LeaveGroupRequest("g", [("member", None)]), 2)


def test_install_is_idempotent() -> None:
    assert install_single_join_group()
    patched = GroupCoordinator._send_req
    assert install_single_join_group()
    assert GroupCoordinator._send_req is patched


def test_a_partial_join_is_answered_without_a_coordinator_and_a_complete_one_is_sent() -> None:
    assert install_single_join_group()
    # a coordinator that knows no coordinator node: anything actually sent fails at once
    coordinator = SimpleNamespace(_assignors=("range", "roundrobin"), coordinator_id=None)

    async def send(request: JoinGroupRequest) -> object:
        return await GroupCoordinator._send_req(coordinator, request)

    assert asyncio.run(send(_join("range"))).error_code == 0  # type: ignore[attr-defined]
    with pytest.raises(GroupCoordinatorNotAvailableError):
        asyncio.run(send(_join("range", "roundrobin")))
