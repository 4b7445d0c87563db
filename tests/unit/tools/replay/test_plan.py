"""What replay produces per line: routing, keys, headers, pacing clock; and the pacer itself."""

from __future__ import annotations

import orjson

from shellwatch.formats.capture import CapturedRecord, capture_line
from shellwatch.formats.event_codec import decode_record
from shellwatch.kafka.headers import REPLAY_HEADER
from shellwatch.tools.replay.plan import LineError, ReplayRecord, in_recorded_order, plan_records
from shellwatch.tools.replay.produce import _Pacer
from tests.unit.builders import T0, conn_doc, exec_doc


def plan(lines: list[bytes]) -> list[ReplayRecord | LineError]:
    return list(plan_records(lines, decode_record, "run-7"))


def test_plain_ecs_lines_are_routed_by_category_and_keyed_by_host() -> None:
    conn, execution = orjson.dumps(conn_doc(T0)), orjson.dumps(exec_doc(T0 + 5))
    first, second = plan([conn + b"\n", b"\n", execution + b"\r\n"])
    assert isinstance(first, ReplayRecord) and isinstance(second, ReplayRecord)
    assert (first.target, first.key, first.value, first.source_ms) == ("network", b"host-a", conn, T0)
    assert (second.target, second.line, second.value) == ("process", 3, execution)
    assert first.headers == ((REPLAY_HEADER, b"run-7"),) and first.decoded


def test_captures_keep_their_headers_but_not_the_workers_own() -> None:
    doc = orjson.dumps(exec_doc(T0))
    record = CapturedRecord(
        "prod-process",
        4,
        99,
        T0 + 777,
        key=b"other-key",
        value=doc,
        headers=(("trace", b"abc"), ("shellwatch.progress", b"network"), (REPLAY_HEADER, b"old-run"), ("n", None)),
    )
    (item,) = plan([capture_line(record)])
    assert isinstance(item, ReplayRecord)
    assert item.key == b"host-a"  # keyed by host.id, not by the recorded key
    assert item.source_ms == T0 + 777  # the recorded record time paces the replay
    assert item.headers == (("trace", b"abc"), ("n", None), (REPLAY_HEADER, b"run-7"))


def test_records_without_events_keep_their_key_and_go_to_the_process_topic() -> None:
    garbage = CapturedRecord("t", 0, 1, 5, key=b"k", value=b"\xff\xfe not json")
    (item,) = plan([capture_line(garbage)])
    assert isinstance(item, ReplayRecord)
    assert (item.target, item.key, item.decoded, item.value) == ("process", b"k", False, b"\xff\xfe not json")


def test_a_broken_capture_line_is_an_error_not_a_stop() -> None:
    bad, good = plan([b'{"topic":"t","partition":"x"}', orjson.dumps(conn_doc(T0))])
    assert isinstance(bad, LineError) and bad.line == 1 and "partition" in bad.reason
    assert isinstance(good, ReplayRecord)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def item_at(ms: int | None) -> ReplayRecord:
    return ReplayRecord(1, "process", None, b"", (), ms, (), True)


def test_pacer_keeps_recorded_gaps_divided_by_speed() -> None:
    clock = FakeClock()
    pacer = _Pacer(2.0, clock, clock.sleep)
    for ms in (10_000, 11_000, 10_500, 14_000, None):  # a step back in time is not waited for
        pacer.wait_for(item_at(ms))
    assert clock.slept == [0.5, 1.5]


def test_without_speed_nothing_waits() -> None:
    clock = FakeClock()
    pacer = _Pacer(None, clock, clock.sleep)
    pacer.wait_for(item_at(0))
    pacer.wait_for(item_at(60_000))
    assert clock.slept == []


def test_capture_records_are_replayed_in_written_order_and_plain_lines_keep_their_place() -> None:
    conn, execution = orjson.dumps(conn_doc(T0)), orjson.dumps(exec_doc(T0 + 5))
    captured = [
        capture_line(CapturedRecord("proc", 0, 7, 1_000, key=None, value=execution)),  # fetched first
        capture_line(CapturedRecord("net", 0, 3, 400, key=None, value=conn)),  # but written before it
        capture_line(CapturedRecord("net", 0, 4, 1_000, key=None, value=conn)),  # same ms: input order
    ]
    items = list(in_recorded_order(plan([*captured, conn, b'{"topic":"t"}', captured[0]])))
    assert [(i.line, i.recorded_ms) if isinstance(i, ReplayRecord) else i.line for i in items] == [
        (2, 400),
        (1, 1_000),
        (3, 1_000),
        (4, None),
        5,
        (6, 1_000),
    ]


def test_the_reorder_window_bounds_what_is_held() -> None:
    lines = [capture_line(CapturedRecord("t", 0, n, 10_000 - n, key=None, value=b"x")) for n in range(5)]
    emitted = [i.line for i in in_recorded_order(plan(lines), window=2) if isinstance(i, ReplayRecord)]
    assert emitted == [3, 4, 5, 2, 1]  # once more than two are held, the oldest held goes out
