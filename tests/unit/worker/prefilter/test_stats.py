"""The pre-filter stage's live partition state: assignment, silence, lag."""

from __future__ import annotations

from shellwatch.worker.prefilter.stats import AssignmentListener, PrefilterStats


def test_silent_partitions_count_from_assignment_or_last_record() -> None:
    stats = PrefilterStats()
    clock = iter([100.0, 499.0, 500.0])  # assigned, revoked (which times the rebalance), assigned
    listener = AssignmentListener(stats, lambda: next(clock))
    assert not stats.assignment_complete
    listener.on_partitions_assigned([("net", 0), ("net", 1), ("proc", 0)])
    assert stats.assignment_complete
    stats.last_record_s[("net", 1)] = 350.0
    assert stats.silent_partitions(now_s=399.0, silent_s=300) == 0
    assert stats.silent_partitions(now_s=401.0, silent_s=300) == 2  # net/0 and proc/0 never had a record
    assert stats.silent_partitions(now_s=651.0, silent_s=300) == 3
    stats.lag[("net", 0)] = 4
    listener.on_partitions_revoked([("net", 0), ("net", 1), ("proc", 0)])
    assert not stats.assignment_complete and stats.lag == {} and stats.last_record_s == {}
    assert stats.silent_partitions(now_s=651.0, silent_s=300) == 0
    listener.on_partitions_assigned([])  # zero partitions is a complete assignment too
    assert stats.assignment_complete and stats.silent_partitions(now_s=10_000.0, silent_s=300) == 0


def test_live_state_stays_out_of_the_logged_repr() -> None:
    stats = PrefilterStats(records=3)
    stats.lag[("net", 0)] = 1
    stats.consumed["net"] = 3
    text = repr(stats)
    assert "records=3" in text and "consumed=Counter({'net': 3})" in text
    assert "lag" not in text and "heartbeat" not in text
