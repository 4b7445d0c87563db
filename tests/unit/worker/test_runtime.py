"""The agent's record handling without Kafka: progress markers, state mirrored to a store, restarts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pytest

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.core.snapshot import HostSnapshot
from shellwatch.kafka.headers import BROKER_TS_HEADER, PROGRESS_HEADER, REPLAY_HEADER, SOURCE_HEADER
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.worker.runtime import CorrelationRuntime, UnusableRecordError
from tests.shared import DictStore
from tests.unit.builders import T0, conn_doc, exec_doc

RULE = load_reverse_shell_rule()
NOW = T0 + 60_000


def runtime(store: DictStore) -> CorrelationRuntime:
    return CorrelationRuntime(Pipeline(RULE, PipelineConfig()), store)


def feed(rt: CorrelationRuntime, doc: dict[str, object], partition: int = 0) -> list[dict[str, object]]:
    alerts = rt.handle(orjson.dumps(doc), {}, partition, NOW)
    rt.persist()
    return alerts


def marker(rt: CorrelationRuntime, kinds: bytes, partition: int = 0) -> list[dict[str, object]]:
    alerts = rt.handle(b"", {PROGRESS_HEADER: kinds}, partition, NOW)
    rt.persist()
    return alerts


def test_progress_marker_releases_a_held_exec() -> None:
    rt = runtime(DictStore())
    assert feed(rt, conn_doc(T0)) == []
    assert feed(rt, exec_doc(T0 + 1000)) == []
    assert marker(rt, b"network", partition=1) == []  # another partition's hosts
    (alert,) = marker(rt, b"network")
    assert alert["rule"]["id"] == "potential-reverse-shell-via-java"  # type: ignore[index]


def test_restart_between_connection_and_exec_resumes_from_the_store() -> None:
    store = DictStore()
    first = runtime(store)
    feed(first, conn_doc(T0))
    marker(first, b"process")  # the connection is applied and pending
    assert set(store.data) == {"host-a"}
    second = runtime(store)  # a new worker process, same changelog
    assert second.reload({0}, NOW) == []
    assert feed(second, exec_doc(T0 + 4000)) == []
    (alert,) = marker(second, b"network")
    assert alert["detection"]["explanation"]["gap_ms"] == 4000  # type: ignore[index]
    state = HostSnapshot.from_bytes(store.data["host-a"].partition(b"\n")[2])
    assert state.pending == () and state.held == ()  # the connection was consumed
    assert [paired for *_, paired in state.recent_execs] == [True]  # kept only for late connections


def test_reload_ignores_partitions_owned_elsewhere_and_forgets_lost_ones() -> None:
    store = DictStore()
    rt = runtime(store)
    feed(rt, conn_doc(T0, host="h-p0"), partition=0)
    feed(rt, conn_doc(T0, host="h-p1"), partition=1)
    other = runtime(store)
    other.reload({1}, NOW)
    assert other.pipeline.correlator.knows("h-p1") and not other.pipeline.correlator.knows("h-p0")
    rt.reload({0}, NOW)
    assert not rt.pipeline.correlator.knows("h-p1")


def test_corrupt_state_is_counted_not_fatal() -> None:
    store = DictStore()
    store.put("host-a", b"0\nnot json")
    rt = runtime(store)
    rt.reload({0}, NOW)
    assert rt.bad_state_records == 1
    feed(rt, conn_doc(T0))  # the host is unknown again: the store is read (and found corrupt) once more
    assert rt.bad_state_records == 2
    assert HostSnapshot.from_bytes(store.data["host-a"].partition(b"\n")[2]).held  # replaced by good state


def test_undecodable_record_is_a_record_error() -> None:
    rt = runtime(DictStore())
    with pytest.raises(UnusableRecordError) as caught:
        rt.handle(b'{"process": ', {}, 0, NOW)
    assert caught.value.reason == "invalid_json"
    with pytest.raises(UnusableRecordError):
        rt.handle(None, {}, 0, NOW)


def test_replay_header_marks_alerts_replayed_even_across_a_restart() -> None:
    store = DictStore()
    first = runtime(store)
    replayed = {REPLAY_HEADER: b"replay-1"}
    assert first.handle(orjson.dumps(conn_doc(T0)), replayed, 0, NOW) == []
    first.persist()
    marker(first, b"process")  # the connection is pending, in the store, flagged replayed
    second = runtime(store)
    second.reload({0}, NOW)
    assert second.handle(orjson.dumps(exec_doc(T0 + 1000)), {}, 0, NOW) == []  # a live exec
    (alert,) = marker(second, b"network")
    assert alert["detection"]["replayed"] is True  # type: ignore[index]


def test_live_records_raise_alerts_not_marked_replayed() -> None:
    rt = runtime(DictStore())
    feed(rt, conn_doc(T0))
    feed(rt, exec_doc(T0 + 1000))
    (alert,) = marker(rt, b"network")
    assert alert["detection"]["replayed"] is False  # type: ignore[index]


def test_a_marker_does_not_release_a_host_whose_newest_record_is_too_recent_for_it() -> None:
    rt = runtime(DictStore())
    exec_written = 1_000_000
    rt.handle(orjson.dumps(conn_doc(T0)), {}, 0, NOW, exec_written - 5_000)
    assert rt.handle(orjson.dumps(exec_doc(T0 + 1000)), {}, 0, NOW, exec_written) == []
    rt.persist()

    def network_marker(as_of_ms: int) -> list[dict[str, object]]:
        headers = {PROGRESS_HEADER: b"network", "shellwatch.as_of": str(as_of_ms).encode()}
        return rt.handle(b"", headers, 0, NOW)

    # fetched 150 ms after the exec was written: a connection written just before it may still be in flight
    assert network_marker(exec_written + 150) == []
    (alert,) = network_marker(exec_written + 200)  # far enough: everything written before the exec was seen
    assert alert["rule"]["id"] == "potential-reverse-shell-via-java"  # type: ignore[index]


def test_a_record_clock_far_ahead_of_the_marker_does_not_hold_the_host_back() -> None:
    rt = runtime(DictStore())
    rt.handle(orjson.dumps(conn_doc(T0)), {}, 0, NOW, 9_000_000)
    rt.handle(orjson.dumps(exec_doc(T0 + 1000)), {}, 0, NOW, 9_000_000)  # stamped an hour ahead of the marker
    headers = {PROGRESS_HEADER: b"network", "shellwatch.as_of": b"5400000"}
    (alert,) = rt.handle(b"", headers, 0, NOW)
    assert alert["detection"]["explanation"]["gap_ms"] == 1000


def forwarded(rt: CorrelationRuntime, doc: dict[str, Any], offset: int, broker_ts: int = 1_000) -> list[dict[str, Any]]:
    """One record as the prefilter stage forwards it: with its source position and record timestamp."""
    topic = "src-process" if doc["event"]["category"] == ["process"] else "src-network"
    headers = {SOURCE_HEADER: f"{topic}/0/{offset}".encode(), BROKER_TS_HEADER: str(broker_ts).encode()}
    alerts = rt.handle(orjson.dumps(doc), headers, 0, NOW)
    rt.persist()
    return alerts


def sequence_alerts(alerts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [a for a in alerts if a["rule"]["id"] == "potential-reverse-shell-via-java"]


def test_a_replayed_connection_never_pairs_twice_even_after_a_restart() -> None:
    store = DictStore()
    first = runtime(store)
    forwarded(first, conn_doc(T0), offset=7)
    forwarded(first, exec_doc(T0 + 1_000), offset=3)
    assert len(sequence_alerts(marker(first, b"network,process"))) == 1
    # a crash: the prefilter stage re-forwards the connection (same source position), a new worker reads it
    second = runtime(store)
    second.reload({0}, NOW)
    forwarded(second, conn_doc(T0), offset=7)
    assert second.skipped_replays == 1
    forwarded(second, exec_doc(T0 + 2_000, pid=4243), offset=4)  # a later shell of the same JVM
    assert sequence_alerts(marker(second, b"network,process")) == []  # nothing left to pair with
    state = HostSnapshot.from_bytes(store.data["host-a"].partition(b"\n")[2])
    assert dict((name, offset) for name, offset, _ in state.sources) == {"src-network/0": 7, "src-process/0": 4}


def test_a_replayed_record_is_skipped_not_reapplied() -> None:
    """The correlator alone would re-apply a replayed connection as a late event (today it then finds the
    exec it paired with and stops there); with the source positions the replay never reaches it."""
    bare, remembering = runtime(DictStore()), runtime(DictStore())
    for rt, send in ((bare, lambda d, o: feed(bare, d)), (remembering, lambda d, o: forwarded(remembering, d, o))):
        send(conn_doc(T0), 7)
        send(exec_doc(T0 + 1_000), 3)
        marker(rt, b"network,process")
        send(conn_doc(T0), 7)  # the replay
    assert (bare.pipeline.correlator.stats.observed, bare.pipeline.correlator.stats.late) == (3, 1)
    assert (remembering.pipeline.correlator.stats.observed, remembering.pipeline.correlator.stats.late) == (2, 0)
    assert (bare.skipped_replays, remembering.skipped_replays) == (0, 1)


def test_a_recreated_source_topic_is_not_mistaken_for_a_replay() -> None:
    rt = runtime(DictStore())
    forwarded(rt, conn_doc(T0), offset=7, broker_ts=1_000)
    forwarded(rt, conn_doc(T0 + 10_000), offset=0, broker_ts=9_000)  # offsets start again, newer record time
    assert rt.skipped_replays == 0
    forwarded(rt, exec_doc(T0 + 11_000), offset=0, broker_ts=9_500)
    (alert,) = sequence_alerts(marker(rt, b"network,process"))
    assert alert["detection"]["explanation"]["gap_ms"] == 1_000


def test_a_restored_host_keeps_the_marker_margin_of_its_newest_record() -> None:
    """After a rebalance the new owner knows each restored host's newest input record from the state (its
    source positions), so a marker fetched just after that record still waits for the next, as before."""
    store = DictStore()
    first = runtime(store)
    exec_written = 1_000_000
    forwarded(first, conn_doc(T0), offset=7, broker_ts=exec_written - 5_000)
    assert forwarded(first, exec_doc(T0 + 1_000), offset=3, broker_ts=exec_written) == []  # held for the network
    second = runtime(store)
    second.reload({0}, NOW)

    def network_marker(as_of_ms: int) -> list[dict[str, object]]:
        headers = {PROGRESS_HEADER: b"network", "shellwatch.as_of": str(as_of_ms).encode()}
        return second.handle(b"", headers, 0, NOW)

    assert network_marker(exec_written + 150) == []
    (alert,) = sequence_alerts(network_marker(exec_written + 200))
    assert alert["detection"]["explanation"]["gap_ms"] == 1_000


def test_a_late_event_is_logged_with_its_host_and_source(caplog: pytest.LogCaptureFixture) -> None:
    """An exec released by a progress marker, then its connection: the late connection names where it came from
    and how far its host had got, so an operator can tell source disorder from a pipeline fault."""
    rt = runtime(DictStore())
    forwarded(rt, exec_doc(T0 + 1_000), offset=3)
    marker(rt, b"network")  # the network stream is declared caught up: the exec is applied without a partner
    with caplog.at_level("WARNING", logger="shellwatch.worker.runtime"):
        forwarded(rt, conn_doc(T0), offset=7)
        forwarded(rt, conn_doc(T0 + 2_000, pid=99), offset=8)  # in order: not late
    assert rt.pipeline.correlator.stats.late == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert (
        f"late network event on relevant partition 0 (source src-network/0/7): host host-a, @timestamp {T0} ms" in line
    )
    assert f"applied up to {T0 + 1_000} ms" in line
