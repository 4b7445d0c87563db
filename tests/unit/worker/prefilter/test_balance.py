"""Catching up on a backlog: a partition running ahead of its lagging co-numbered partner is paused."""

from __future__ import annotations

import pytest

from shellwatch.worker.prefilter.balance import CatchUpBalance

NET0, PROC0, NET1, PROC1 = ("net", 0), ("proc", 0), ("net", 1), ("proc", 1)
ALL = [NET0, PROC0, NET1, PROC1]


def balance(**fronts: int) -> CatchUpBalance:
    b = CatchUpBalance(2_500)
    names = {"net0": NET0, "proc0": PROC0, "net1": NET1, "proc1": PROC1}
    for name, ms in fronts.items():
        b.consumed(names[name], ms)
    return b


@pytest.mark.parametrize(
    ("fronts", "behind", "paused"),
    [
        # process 0 ran 3 s ahead of network 0, which still has records: hold process 0
        ({"net0": 10_000, "proc0": 13_000}, {NET0: True}, {PROC0}),
        # exactly at the limit: not ahead by more than max_lead_ms
        ({"net0": 10_000, "proc0": 12_500}, {NET0: True}, set()),
        # the partner has nothing left to read (live traffic, a quiet topic): never hold back
        ({"net0": 10_000, "proc0": 60_000}, {NET0: False}, set()),
        # only co-numbered partitions are compared: partition 1 lagging says nothing about partition 0
        ({"net0": 50_000, "proc1": 10_000, "proc0": 50_000}, {PROC1: True}, set()),
        ({"net1": 20_000, "proc1": 10_000}, {PROC1: True, NET1: True}, {NET1}),
        # a partner never consumed from yet: unknown, so nothing is paused on its account
        ({"proc0": 90_000}, {NET0: True}, set()),
    ],
)
def test_pauses_only_what_ran_ahead_of_a_lagging_partner(
    fronts: dict[str, int], behind: dict[tuple[str, int], bool], paused: set[tuple[str, int]]
) -> None:
    assert balance(**fronts).to_pause(ALL, behind) == paused


def test_resumes_once_the_partner_caught_up_and_forgets_revoked_partitions() -> None:
    b = balance(net0=10_000, proc0=13_000)
    assert b.to_pause(ALL, {NET0: True}) == {PROC0}
    b.consumed(NET0, 12_000)
    assert b.to_pause(ALL, {NET0: True}) == set()
    b.forget([NET0])
    assert b.known() == [PROC0]


def test_negative_lead_is_refused() -> None:
    with pytest.raises(ValueError, match="max_lead_ms"):
        CatchUpBalance(-1)
