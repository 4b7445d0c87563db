"""The record-time merge of the prefilter stage: what is released when, what is committed, what is paused."""

from __future__ import annotations

import random

import pytest

from shellwatch.worker.prefilter.alignment import Alignment, Fetched

NET, PROC = ("net", 0), ("proc", 0)


def fetch(
    alignment: Alignment[tuple[str, int], str], partition: tuple[str, int], *records: tuple[int, int, str | None]
) -> None:
    alignment.fetched(partition, [Fetched(offset, ts, item) for offset, ts, item in records], now_ms=0)


def items(alignment: Alignment[tuple[str, int], str], lag: dict[tuple[str, int], int | None]) -> list[str]:
    return [r.item for r in alignment.release(lag, now_ms=0)]


def test_a_whole_fetch_of_one_topic_waits_for_its_lagging_partner() -> None:
    a: Alignment[tuple[str, int], str] = Alignment()
    fetch(a, PROC, (0, 1_000, "exec@1"), (1, 40_000, "exec@40"))
    assert items(a, {NET: 500, PROC: 0}) == []  # net has records on the broker, none fetched yet
    assert a.waiting_on({NET: 500, PROC: 0}) == [NET]
    fetch(a, NET, (0, 500, "conn@0.5"), (1, 900, None))
    assert items(a, {NET: 498, PROC: 0}) == ["conn@0.5"]  # net read only up to 0.9 s: exec@1 waits
    fetch(a, NET, (2, 1_000, "conn@1"), (3, 30_000, "conn@30"))
    assert items(a, {NET: 496, PROC: 0}) == ["exec@1", "conn@1", "conn@30"]  # a tie: the one fetched first
    assert items(a, {NET: 0, PROC: 0}) == ["exec@40"]  # net caught up: nothing left to wait for


def test_ties_go_to_the_record_fetched_first_and_partition_order_is_kept() -> None:
    a: Alignment[tuple[str, int], str] = Alignment()
    fetch(a, NET, (0, 5, "n1"), (1, 3, "n2"))  # out of time order inside the partition: never reordered
    fetch(a, PROC, (0, 5, "p1"))
    assert items(a, {NET: 0, PROC: 0}) == ["n1", "n2", "p1"]


def test_an_unknown_lag_waits_like_a_lag() -> None:
    a: Alignment[tuple[str, int], str] = Alignment()
    fetch(a, PROC, (0, 10, "exec"))
    assert items(a, {NET: None, PROC: 0}) == []
    assert items(a, {NET: 0, PROC: 0}) == ["exec"]


def test_dropped_records_move_time_and_a_revoked_partition_no_longer_holds_back() -> None:
    a: Alignment[tuple[str, int], str] = Alignment()
    fetch(a, PROC, (7, 10, "exec"))
    fetch(a, NET, (0, 20, None))
    assert items(a, {NET: 5, PROC: 0}) == ["exec"]
    fetch(a, NET, (1, 30, "conn"))
    assert a.commit_offset(NET, position=2) == 1
    assert items(a, {PROC: 0}) == []  # NET revoked: its buffer is gone, to be re-read by the new owner
    assert a.drained(NET)


def test_commit_stops_at_the_first_buffered_record() -> None:
    a: Alignment[tuple[str, int], str] = Alignment()
    fetch(a, PROC, (10, 100, None), (11, 200, "e1"), (12, 300, "e2"))
    assert a.commit_offset(PROC, position=13) == 11
    assert not a.drained(PROC)
    assert items(a, {NET: 0, PROC: 0}) == ["e1", "e2"]
    assert a.commit_offset(PROC, position=13) == 13
    assert a.drained(PROC)


def test_a_re_read_partition_is_buffered_once() -> None:
    a: Alignment[tuple[str, int], str] = Alignment()
    fetch(a, PROC, (5, 100, "e5"), (6, 200, "e6"))
    fetch(a, PROC, (5, 100, "e5"), (6, 200, "e6"))  # the consumer was reset to the committed offset
    assert a.resets == 1
    assert items(a, {PROC: 0}) == ["e5", "e6"]


def test_full_buffers_are_to_be_paused_and_waits_are_measured() -> None:
    a: Alignment[tuple[str, int], str] = Alignment(max_buffered=2)
    a.fetched(PROC, [Fetched(0, 1, "a"), Fetched(1, 2, "b")], now_ms=1_000)
    assert a.full() == {PROC}
    assert a.buffered() == 2
    released = a.release({NET: 0, PROC: 0}, now_ms=1_250)
    assert [(r.item, r.waited_ms) for r in released] == [("a", 250), ("b", 250)]
    assert a.full() == set()
    with pytest.raises(ValueError, match="max_buffered"):
        Alignment(max_buffered=0)


@pytest.mark.parametrize("seed", range(20))
def test_any_fetch_pattern_yields_the_time_merge(seed: int) -> None:
    """Whatever the fetch sizes and their interleaving, the output is the merge of the partitions by record time
    (each partition's own order kept): the order a live pipeline would have seen."""
    rng = random.Random(seed)
    parts = [("net", 0), ("proc", 0), ("net", 1)]
    times = {p: sorted(rng.sample(range(1_000), 60)) for p in parts}
    kept = {p: [rng.random() < 0.3 for _ in times[p]] for p in parts}
    a: Alignment[tuple[str, int], tuple[int, tuple[str, int], int]] = Alignment()
    read = dict.fromkeys(parts, 0)
    out: list[tuple[int, tuple[str, int], int]] = []
    while any(read[p] < len(times[p]) for p in parts):
        p = rng.choice([q for q in parts if read[q] < len(times[q])])
        chunk = range(read[p], min(read[p] + rng.randint(1, 25), len(times[p])))
        a.fetched(p, [Fetched(i, times[p][i], (times[p][i], p, i) if kept[p][i] else None) for i in chunk], now_ms=0)
        read[p] = chunk.stop
        out += [r.item for r in a.release({q: len(times[q]) - read[q] for q in parts}, now_ms=0)]
    assert a.buffered() == 0
    expected = [(times[p][i], p, i) for p in parts for i in range(len(times[p])) if kept[p][i]]
    assert sorted(out) == sorted(expected)
    assert [ts for ts, _, _ in out] == sorted(ts for ts, _, _ in expected)
    for p in parts:
        assert [i for _, q, i in out if q == p] == sorted(i for _, q, i in out if q == p)
