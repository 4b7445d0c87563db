"""The sequence semantics of DESIGN §3, table-driven: each case lists events in arrival order and
the exact (connection, exec) pairs expected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shellwatch.core.correlate import Correlator
from shellwatch.ecs.events import BundledEvent
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from tests.unit.builders import T0, bundled, conn_doc, decode, exec_doc

RULE = load_reverse_shell_rule()


@dataclass(frozen=True)
class C:
    """A connection: label, ms after T0, java pid (its entity id is the join key)."""

    label: str
    at: int
    pid: int = 100
    host: str = "h1"
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class X:
    """An exec whose parent is java ``parent``."""

    label: str
    at: int
    parent: int = 100
    host: str = "h1"
    fields: dict[str, Any] = field(default_factory=dict)


def to_event(item: C | X) -> BundledEvent:
    if isinstance(item, C):
        doc = conn_doc(T0 + item.at, host=item.host, pid=item.pid, event_id=item.label, **item.fields)
    else:
        doc = exec_doc(T0 + item.at, host=item.host, parent_pid=item.parent, event_id=item.label, **item.fields)
    (event,) = bundled(decode(doc))
    return event


def run(items: list[C | X], **kwargs: Any) -> list[tuple[str, str]]:
    correlator = Correlator(RULE, **kwargs)
    matches = []
    for item in items:
        matches.extend(correlator.observe(to_event(item)))
    matches.extend(correlator.flush())
    return sorted((m.connection.event_id or "", m.execution.event_id or "") for m in matches)


CASES: list[tuple[str, list[C | X], list[tuple[str, str]]]] = [
    ("simple", [C("c", 0), X("x", 1000)], [("c", "x")]),
    ("gap exactly 5.000 s matches", [C("c", 0), X("x", 5000)], [("c", "x")]),
    ("gap 5.001 s does not", [C("c", 0), X("x", 5001)], []),
    ("same millisecond: connection first", [C("c", 0), X("x", 0)], [("c", "x")]),
    ("same millisecond, exec arrives first", [X("x", 0), C("c", 0)], [("c", "x")]),
    ("exec 1 ms before connection", [X("x", 0), C("c", 1)], []),
    ("exec arrives first with later timestamp", [X("x", 900), C("c", 0)], [("c", "x")]),
    ("newest connection replaces", [C("c0", 0), C("c2", 2000), X("x", 6000)], [("c2", "x")]),
    ("replacement within span", [C("c0", 0), C("c2", 2000), X("x", 3000)], [("c2", "x")]),
    ("consumed once", [C("c", 0), X("x1", 1000), X("x2", 2000)], [("c", "x1")]),
    ("conn exec conn exec", [C("c1", 0), X("x1", 100), C("c2", 200), X("x2", 300)], [("c1", "x1"), ("c2", "x2")]),
    ("two connections same ms: later arrival is newer", [C("a", 0), C("b", 0), X("x", 10)], [("b", "x")]),
    ("two execs same ms: first arrival wins", [C("c", 0), X("x1", 10), X("x2", 10)], [("c", "x1")]),
    (
        "private connection does not replace",
        [C("pub", 0), C("priv", 1000, fields={"destination__ip": "10.0.0.1"}), X("x", 2000)],
        [("pub", "x")],
    ),
    ("expired then new one restarts the clock", [C("c0", 0), C("c9", 9000), X("x", 13000)], [("c9", "x")]),
    ("different java process never joins", [C("c", 0, pid=100), X("x", 1000, parent=200)], []),
    ("different host never joins", [C("c", 0, host="h1"), X("x", 1000, host="h2")], []),
    (
        "same pid on two hosts: one alert each",
        [C("c1", 0, host="h1"), C("c2", 0, host="h2"), X("x2", 10, host="h2"), X("x1", 20, host="h1")],
        [("c1", "x1"), ("c2", "x2")],
    ),
    (
        "exec failing stage 2 does not consume",
        [C("c", 0), X("bad", 100, fields={"process__name": "python"}), X("x", 200)],
        [("c", "x")],
    ),
    ("null join key never joins", [C("c", 0, fields={"process__entity_id": None}), X("x", 10)], []),
    ("missing parent key never joins", [C("c", 0), X("x", 10, fields={"process__parent__entity_id": None})], []),
    ("no host.id never joins", [C("c", 0, fields={"host__id": None}), X("x", 10, fields={"host__id": None})], []),
    (
        "join key is case-sensitive",
        [C("c", 0, fields={"process__entity_id": "ABC"}), X("x", 10, fields={"process__parent__entity_id": "abc"})],
        [],
    ),
    ("2022 data pairs like live data", [C("c", -60_000_000_000), X("x", -60_000_000_000 + 4999)], [("c", "x")]),
]


@pytest.mark.parametrize(("items", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_sequence_semantics(items: list[C | X], expected: list[tuple[str, str]]) -> None:
    assert run(items) == expected


def test_exec_side_ahead_is_not_matched_eagerly() -> None:
    # DESIGN §4: with the exec stream ahead, eager matching would pair x4 with c0 and leave c2 to
    # pair falsely with x7. In event-time order c2 replaces c0, x4 consumes c2, x7 finds nothing.
    items: list[C | X] = [X("x4", 4000), X("x7", 7500), C("c0", 0), C("c2", 2000)]
    assert run(items) == [("c2", "x4")]


def test_connection_side_ahead() -> None:
    items: list[C | X] = [C("c0", 0), C("c2", 2000), C("c3", 3000, pid=7), X("x4", 4000), X("x5", 5000, parent=7)]
    assert run(items) == [("c2", "x4"), ("c3", "x5")]


def test_alert_is_raised_as_soon_as_it_is_certain() -> None:
    correlator = Correlator(RULE)
    assert correlator.observe(to_event(C("c", 0))) == []
    assert correlator.observe(to_event(X("x", 1000))) == []  # a connection at <= 1000 could still come
    (match,) = correlator.observe(to_event(C("later", 1001, pid=55)))  # the network stream passed 1000
    assert (match.connection.event_id, match.execution.event_id, match.gap_ms) == ("c", "x", 1000)


def test_idle_stream_releases_held_exec() -> None:
    correlator = Correlator(RULE)
    correlator.observe(to_event(C("c", 0)))
    assert correlator.observe(to_event(X("x", 1000))) == []
    assert correlator.stream_idle("process") == []
    (match,) = correlator.stream_idle("network")
    assert match.execution.event_id == "x"
    assert correlator.held_count == 0


def test_an_idle_stream_marks_dirty_only_the_hosts_it_changed() -> None:
    """A progress marker reaches every holding host of its partition; rewriting the state of those it released
    nothing for would cost a changelog write per host per marker."""
    correlator = Correlator(RULE)
    correlator.observe(to_event(C("c", 0)))
    correlator.observe(to_event(X("x", 1000)))
    correlator.observe(to_event(X("y", 1000, host="h2")))
    assert correlator.holding == {"h1", "h2"}
    correlator.drain_dirty()
    assert correlator.stream_idle("process") == []  # the execs wait for the network stream
    assert correlator.drain_dirty() == set()
    (match,) = correlator.stream_idle("network", ["h1"])
    assert match.execution.event_id == "x"
    assert correlator.drain_dirty() == {"h1"}
    assert correlator.holding == {"h2"}


def test_lag_beyond_allowed_lateness_releases_and_late_events_are_counted() -> None:
    correlator = Correlator(RULE, allowed_lateness_ms=5000)
    correlator.observe(to_event(X("x", 1000)))
    # The process stream runs 5.001 s past the held exec: the network stream counts as late now.
    assert correlator.observe(to_event(X("other", 6001, parent=9))) == []
    assert correlator.held_count == 1  # only the newer exec is still held
    # A connection older than what was released is late: applied at once, and it still pairs with
    # the exec that, in event-time order, would have completed its sequence.
    (match,) = correlator.observe(to_event(C("c", 500)))
    assert correlator.stats.late == 1
    assert (match.connection.event_id, match.execution.event_id, match.gap_ms, match.late) == ("c", "x", 500, True)


def test_late_connection_does_not_pair_with_an_exec_beyond_maxspan() -> None:
    correlator = Correlator(RULE, allowed_lateness_ms=0)
    correlator.observe(to_event(X("x", 6000)))
    correlator.observe(to_event(X("tick", 6001, parent=9)))
    assert correlator.observe(to_event(C("c", 999))) == []
    assert correlator.stats.late == 1
    assert correlator.pending_count == 0  # in event-time order it expired at the exec


def test_late_connection_behind_a_paired_exec_raises_nothing_new() -> None:
    correlator = Correlator(RULE, allowed_lateness_ms=0)
    correlator.observe(to_event(C("c0", 0)))
    correlator.observe(to_event(X("x", 2000)))
    correlator.observe(to_event(C("tick", 2001, pid=9)))
    assert correlator.stats.matches == 1
    correlator.observe(to_event(X("tock", 2002, parent=9)))
    assert correlator.observe(to_event(C("c1", 1000))) == []  # late; x already alerted
    assert [(m.connection.event_id, m.execution.event_id) for m in correlator.flush()] == [("tick", "tock")]
    assert correlator.stats.matches == 2


def test_one_host_clock_in_the_future_does_not_release_other_hosts() -> None:
    correlator = Correlator(RULE)
    correlator.observe(to_event(C("c", 0, host="good")))
    correlator.observe(to_event(X("x", 1000, host="good")))
    far = 100 * 365 * 86_400_000
    # A host at 2099 sends both kinds: its own sequence completes, the good host's exec stays held.
    correlator.observe(to_event(C("fc", far, host="future")))
    (future_match,) = correlator.observe(to_event(X("fx", far + 10, host="future"))) + correlator.observe(
        to_event(C("fc2", far + 20, host="future", pid=5))
    )
    assert future_match.connection.event_id == "fc"
    assert correlator.held_count >= 1
    assert correlator.stats.matches == 1
    (good_match,) = correlator.observe(to_event(C("c2", 1001, host="good", pid=5)))
    assert good_match.execution.event_id == "x"


def advance_process_stream(correlator: Correlator, at: int, host: str = "h1") -> None:
    """An exec that fails the process stage still tells the correlator the stream has moved on."""
    correlator.observe(to_event(X(f"noise-{at}", at, host=host, parent=1, fields={"process__name": "python3"})))


def test_expired_connections_are_evicted_by_event_time() -> None:
    correlator = Correlator(RULE)
    for index in range(50):
        correlator.observe(to_event(C(f"c{index}", index * 10, pid=1000 + index)))
    advance_process_stream(correlator, 490)
    assert correlator.pending_count == 50
    advance_process_stream(correlator, 5200)
    # Execs still to come are at >= 5200 ms: connections before 200 ms can no longer complete.
    assert correlator.pending_count == 30
    assert correlator.stats.expired_connections == 20


def test_state_bounds_count_their_evictions() -> None:
    correlator = Correlator(RULE, max_hosts=3, max_pending_per_host=2)
    for index in range(4):
        correlator.observe(to_event(C(f"k{index}", index, pid=10 + index)))
    advance_process_stream(correlator, 10)
    assert correlator.pending_count == 2
    assert correlator.stats.evicted_connections == 2
    for index in range(5):
        correlator.observe(to_event(C(f"h{index}", 100, host=f"flood-{index}")))
    assert correlator.host_count == 3
    assert correlator.stats.evicted_hosts == 3


def test_held_events_are_capped_per_host() -> None:
    correlator = Correlator(RULE, max_held_per_host=10)
    for index in range(25):
        correlator.observe(to_event(C(f"c{index}", index, pid=index)))
    assert correlator.held_count == 10
    assert correlator.stats.forced_releases == 15


@pytest.mark.parametrize("bad", [{"allowed_lateness_ms": -1}, {"max_hosts": 0}, {"max_held_per_host": 0}])
def test_constructor_validates(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Correlator(RULE, **bad)
