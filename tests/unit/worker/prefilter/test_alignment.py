"""The record-time merge of the prefilter stage: what is released when, what is committed, what is paused."""

from __future__ import annotations

import random

import pytest

from shellwatch.worker.prefilter.alignment import Alignment, Fetched, Span

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


def test_equal_record_times_go_by_event_time() -> None:
    """A backlog produced at once puts seconds of event time in one millisecond of record time."""
    a: Alignment[tuple[str, int], str] = Alignment()
    a.fetched(NET, [Fetched(0, 5, "conn@9", 9_000), Fetched(1, 5, "conn@3", 3_000)], now_ms=0)
    a.fetched(PROC, [Fetched(0, 5, "exec@2", 2_000), Fetched(1, 6, "exec@1", 1_000)], now_ms=0)
    # heads compared by (record time, event time); a partition's own order is never changed
    assert items(a, {NET: 0, PROC: 0}) == ["exec@2", "conn@9", "conn@3", "exec@1"]


def test_a_partner_read_up_to_the_head_s_millisecond_only_does_not_vouch_for_it() -> None:
    """More records of that millisecond may still be on the broker, with earlier events."""
    a: Alignment[tuple[str, int], str] = Alignment()
    a.fetched(NET, [Fetched(0, 1_000, None, 1_000)], now_ms=0)  # read up to 1 s, dropped by the screen
    a.fetched(PROC, [Fetched(0, 1_000, "exec@1.4", 1_400)], now_ms=0)
    assert items(a, {NET: 2, PROC: 0}) == []
    a.fetched(NET, [Fetched(1, 1_000, "conn@1.2", 1_200), Fetched(2, 1_001, None, 1_500)], now_ms=0)
    assert items(a, {NET: 0, PROC: 0}) == ["conn@1.2", "exec@1.4"]


@pytest.mark.parametrize("seed", range(20))
def test_a_backlog_produced_at_once_is_merged_in_event_time_order(seed: int) -> None:
    """Events produced in event-time order, many per millisecond of record time, spread over partitions and
    fetched in random chunks: the merge releases them in event-time order."""
    rng = random.Random(seed)
    parts = [("net", 0), ("proc", 0), ("net", 1), ("proc", 1)]
    per_ms = rng.randint(5, 120)
    records: dict[tuple[str, int], list[tuple[int, int]]] = {p: [] for p in parts}
    for n in range(600):  # the n-th event produced: record time n // per_ms, event time n * 100 ms
        records[rng.choice(parts)].append((n // per_ms, n * 100))
    a: Alignment[tuple[str, int], int] = Alignment()
    read = dict.fromkeys(parts, 0)
    out: list[int] = []
    while any(read[p] < len(records[p]) for p in parts):
        p = rng.choice([q for q in parts if read[q] < len(records[q])])
        chunk = range(read[p], min(read[p] + rng.randint(1, 40), len(records[p])))
        a.fetched(p, [Fetched(i, records[p][i][0], records[p][i][1], records[p][i][1]) for i in chunk], now_ms=0)
        read[p] = chunk.stop
        out += [r.item for r in a.release({q: len(records[q]) - read[q] for q in parts}, now_ms=0)]
    assert len(out) == 600
    assert out == sorted(out)


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


# -- a stale "caught up": the partner's backlog lands after the fetch that found it caught up ---------------------


def test_a_partner_caught_up_before_its_backlog_landed_does_not_let_a_backlog_go_ahead() -> None:
    """After a broker outage the producer delivers its backlog to the two topics up to 0.5 s apart: network's
    10 s of record time is fetched at T while process still counts as caught up, as of a fetch answered at T."""
    a: Alignment[tuple[str, int], str] = Alignment(idle_ms=600)
    a.fetched(NET, [Fetched(0, 1_000, "conn@1"), Fetched(1, 9_000, "conn@9")], now_ms=10_000, polled_ms=10_000)
    assert a.release({NET: 0, PROC: 0}, now_ms=10_000, polled_ms={NET: 10_000, PROC: 10_000}) == []
    assert a.waiting_on({NET: 0, PROC: 0}, {NET: 10_000, PROC: 10_000}) == [PROC]
    assert not a.vouches(PROC, {NET: 0, PROC: 0}, {NET: 10_000, PROC: 10_000})  # no marker may say otherwise
    # 500 ms later process's backlog has landed and is fetched: the merge is the time merge
    a.fetched(PROC, [Fetched(0, 1_500, "exec@1.5"), Fetched(1, 9_500, "exec@9.5")], now_ms=10_500, polled_ms=10_500)
    released = a.release({NET: 0, PROC: 0}, now_ms=10_500, polled_ms={NET: 10_500, PROC: 10_500})
    assert [r.item for r in released] == ["conn@1", "exec@1.5", "conn@9"]  # exec@9.5 waits: network is quiet
    assert not any(r.idle for r in released) and a.idle_releases == 0
    assert a.release({NET: 0, PROC: 0}, now_ms=11_000, polled_ms={NET: 11_000, PROC: 11_000}) == []
    late = a.release({NET: 0, PROC: 0}, now_ms=11_100, polled_ms={NET: 11_100, PROC: 11_100})
    assert [(r.item, r.idle, r.waited_ms) for r in late] == [("exec@9.5", True, 600)]
    assert a.idle_releases == 1


def test_without_an_idle_time_the_stale_observation_lets_one_backlog_go_first() -> None:
    """What the idle time is for (idle_ms=0: a caught-up partner vouches at once, as before it existed)."""
    a: Alignment[tuple[str, int], str] = Alignment(idle_ms=0)
    a.fetched(NET, [Fetched(0, 1_000, "conn@1"), Fetched(1, 9_000, "conn@9")], now_ms=10_000)
    assert [r.item for r in a.release({NET: 0, PROC: 0}, now_ms=10_000)] == ["conn@1", "conn@9"]
    a.fetched(PROC, [Fetched(0, 1_500, "exec@1.5")], now_ms=10_500)
    assert [r.item for r in a.release({NET: 0, PROC: 0}, now_ms=10_500)] == ["exec@1.5"]  # 7.5 s out of order


def test_a_partner_read_past_the_head_or_holding_a_head_costs_no_idle_wait() -> None:
    a: Alignment[tuple[str, int], str] = Alignment(idle_ms=500)
    a.fetched(NET, [Fetched(0, 1_000, "conn@1")], now_ms=5_000)
    a.fetched(PROC, [Fetched(0, 1_200, None)], now_ms=5_000)  # dropped by the screen, but process is past 1 s
    released = a.release({NET: 0, PROC: 0}, now_ms=5_000, polled_ms={NET: 5_000, PROC: 5_000})
    assert [(r.item, r.idle, r.waited_ms) for r in released] == [("conn@1", False, 0)]
    a.fetched(NET, [Fetched(1, 2_000, "conn@2")], now_ms=5_010)
    a.fetched(PROC, [Fetched(1, 2_500, "exec@2.5")], now_ms=5_010)
    released = a.release({NET: 0, PROC: 0}, now_ms=5_010, polled_ms={NET: 5_010, PROC: 5_010})
    assert [r.item for r in released] == ["conn@2"]  # exec@2.5 waits for network (quiet) up to the idle time
    assert a.idle_releases == 0


def test_a_caught_up_partner_without_a_known_fetch_time_vouches_for_nothing() -> None:
    a: Alignment[tuple[str, int], str] = Alignment(idle_ms=500)
    a.fetched(PROC, [Fetched(0, 10, "exec")], now_ms=0, polled_ms=1_000)
    assert a.release({NET: 0, PROC: 0}, now_ms=9_000, polled_ms={PROC: 9_000}) == []
    assert [r.item for r in a.release({NET: 0, PROC: 0}, now_ms=9_000, polled_ms={NET: 1_500})] == ["exec"]
    with pytest.raises(ValueError, match="idle_ms"):
        Alignment(idle_ms=-1)


def test_a_marker_vouches_only_as_far_as_the_merge_does() -> None:
    """A drained, caught-up partition's marker is held back while a partner's record waits for it: the
    partition's backlog may still land before that record (and the marker would say it never will)."""
    a: Alignment[tuple[str, int], str] = Alignment(idle_ms=500)
    lag: dict[tuple[str, int], int | None] = {NET: 0, PROC: 0}
    assert a.vouches(PROC, lag, {NET: 10_000, PROC: 10_000})  # nothing waits anywhere
    a.fetched(NET, [Fetched(0, 1_000, "conn@1")], now_ms=10_000, polled_ms=10_000)
    assert not a.vouches(NET, lag, {NET: 10_000, PROC: 10_000})  # conn@1 waits in the merge
    assert not a.vouches(PROC, lag, {NET: 10_000, PROC: 10_400})
    assert not a.vouches(PROC, {NET: 0, PROC: 3}, {NET: 10_000, PROC: 10_600})  # a lag vouches for nothing
    assert a.vouches(PROC, lag, {NET: 10_000, PROC: 10_500})
    assert [r.item for r in a.release(lag, now_ms=10_500, polled_ms={NET: 10_500, PROC: 10_500})] == ["conn@1"]
    assert a.vouches(NET, lag, {NET: 10_500, PROC: 10_500})


@pytest.mark.parametrize("seed", range(30))
def test_backlogs_landing_apart_within_the_idle_time_are_merged_by_record_time(seed: int) -> None:
    """Each partition's backlog (old records) lands on the broker at its own time, up to ``skew`` after the
    first; every fetch answer covers every partition (one broker); records trickle in live afterwards. With
    ``idle_ms`` above the skew the output is the time merge of everything, whichever partition landed first."""
    rng = random.Random(seed)
    parts = [("net", 0), ("proc", 0)]
    skew_ms, idle_ms = 500, 600
    first_ms = 20_000
    landing = {p: first_ms + rng.randint(0, skew_ms) for p in parts}
    # (record time, lands at): a backlog of the 10 s before the first landing, then live records
    records = {
        p: sorted(
            [(ts, landing[p]) for ts in rng.sample(range(8_000, first_ms - 2_000), 40)]
            + [(ts, ts + rng.randint(0, 20)) for ts in rng.sample(range(landing[p] + 1, first_ms + 3_000), 20)]
        )
        for p in parts
    }
    a: Alignment[tuple[str, int], tuple[int, tuple[str, int], int]] = Alignment(idle_ms=idle_ms)
    read = dict.fromkeys(parts, 0)
    out: list[tuple[int, tuple[str, int], int]] = []
    now_ms = first_ms - 1_000
    while now_ms < first_ms + 6_000:
        now_ms += rng.randint(5, 120)  # a fetch answered now, for every partition
        landed = {p: sum(1 for _, at in records[p] if at <= now_ms) for p in parts}
        for p in parts:
            chunk = range(read[p], min(landed[p], read[p] + rng.randint(1, 15)))
            if chunk:
                a.fetched(p, [Fetched(i, records[p][i][0], (records[p][i][0], p, i)) for i in chunk], now_ms, now_ms)
                read[p] = chunk.stop
        lag: dict[tuple[str, int], int | None] = {p: landed[p] - read[p] for p in parts}
        out += [r.item for r in a.release(lag, now_ms, dict.fromkeys(parts, now_ms))]
    assert a.buffered() == 0
    assert len(out) == sum(len(r) for r in records.values())
    assert [ts for ts, _, _ in out] == sorted(ts for ts, _, _ in out)


@pytest.mark.parametrize("seed", range(20))
def test_a_fetch_taken_at_once_is_merged_as_its_records_one_by_one(seed: int) -> None:
    """The stage hands the merge a fetch's span and its kept records only (nothing per dropped record); that
    must release, commit and reset exactly as the records fed one by one, seeks back included."""
    rng = random.Random(seed)
    one, span = Alignment[tuple[str, int], str](max_buffered=10_000), Alignment[tuple[str, int], str](10_000)
    next_offset = {NET: 0, PROC: 0}
    released: tuple[list[str], list[str]] = ([], [])
    for turn in range(60):
        partition = rng.choice((NET, PROC))
        if rng.random() < 0.05:  # a seek back (a rebalance or a failed commit)
            next_offset[partition] = max(0, next_offset[partition] - rng.randint(1, 5))
        start = next_offset[partition]
        records = [
            Fetched(
                offset,
                turn * 100 + rng.randint(-50, 50),
                f"{partition[0]}@{offset}" if rng.random() < 0.3 else None,
                rng.choice((-1, rng.randint(0, 10_000))),
            )
            for offset in range(start, start + rng.randint(1, 8))
        ]
        next_offset[partition] = records[-1].offset + 1
        one.fetched(partition, records, now_ms=turn)
        kept = [(r.offset, r.timestamp_ms, r.event_ms, r.item) for r in records if r.item is not None]
        edges = Span(records[0].offset, records[-1].offset, max(r.timestamp_ms for r in records))
        span.fetched_span(partition, edges, kept, now_ms=turn)
        lag = {NET: rng.choice((0, 0, 3)), PROC: rng.choice((0, 0, 3))}
        released[0].extend(r.item for r in one.release(lag, now_ms=turn))
        released[1].extend(r.item for r in span.release(lag, now_ms=turn))
        for p in (NET, PROC):
            assert one.commit_offset(p, next_offset[p]) == span.commit_offset(p, next_offset[p])
    assert released[0] == released[1]
    assert one.resets == span.resets
    assert released[0], "the random fetches released nothing: the comparison would be empty"
