from __future__ import annotations

import pytest

from shellwatch.core.grouping import AlertGrouper

HOUR = 3_600_000
KEY = ("java-1", "bash -c id", "java_shell_execution_suspicious")


def test_one_alert_per_group_per_period_and_the_next_reports_repeats() -> None:
    grouper = AlertGrouper(HOUR)
    assert grouper.admit("h", KEY, 0) == 0
    assert grouper.admit("h", KEY, 1000) is None
    assert grouper.admit("h", KEY, HOUR - 1) is None
    assert grouper.admit("h", KEY, HOUR) == 2  # the period ended: emitted, reporting two repeats
    assert grouper.admit("h", KEY, HOUR + 5) is None
    assert (grouper.stats.emitted, grouper.stats.suppressed) == (2, 3)


@pytest.mark.parametrize(
    "other",
    [("h2", KEY), ("h", ("java-2", *KEY[1:])), ("h", (KEY[0], "bash -c ls", KEY[2])), ("h", (*KEY[:2], "x"))],
)
def test_any_key_part_makes_another_group(other: tuple[str, tuple[str, str, str]]) -> None:
    grouper = AlertGrouper(HOUR)
    grouper.admit("h", KEY, 0)
    assert grouper.admit(other[0], other[1], 10) == 0


def test_state_survives_export_and_import() -> None:
    first = AlertGrouper(HOUR)
    first.admit("h", KEY, 0)
    first.admit("h", KEY, 10)
    data = first.export_host("h")
    assert data is not None
    second = AlertGrouper(HOUR)
    second.import_host("h", data)
    assert second.admit("h", KEY, 20) is None
    assert second.admit("h", KEY, HOUR + 1) == 2
    with pytest.raises(ValueError, match="not a group export"):
        second.import_host("h", b"{}")


def test_bounded_and_expired_groups() -> None:
    grouper = AlertGrouper(HOUR, max_groups_per_host=2, max_hosts=2)
    for index in range(3):
        grouper.admit("h", (f"j{index}", "c", "x"), index)
    assert grouper.stats.evicted_groups == 1
    grouper.admit("h", ("late", "c", "x"), 3 * HOUR)
    assert grouper.export_host("h") is not None
    assert len(grouper._hosts["h"].groups) == 1  # the others ended with nothing to report
    for host in ("a", "b", "c"):
        grouper.admit(host, KEY, 0)
    assert not grouper.knows("h") and grouper.knows("c")


def test_zero_period_never_suppresses() -> None:
    grouper = AlertGrouper(0)
    assert [grouper.admit("h", KEY, 5) for _ in range(3)] == [0, 0, 0]
