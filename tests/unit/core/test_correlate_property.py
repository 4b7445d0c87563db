"""Property: any interleaving of per-host, time-ordered network and process streams, skewed by up to
the allowed lateness, yields exactly the alerts and pairings of applying the events in event-time
order (DESIGN §3-4). The reference below is deliberately naive and independent of the engine."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shellwatch.core.correlate import Correlator, Match
from shellwatch.core.snapshot import HostSnapshot
from shellwatch.core.stages import stage_clauses
from shellwatch.ecs.events import BundledEvent, NetworkEvent, ProcessEvent
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from tests.unit.builders import T0, conn_doc, exec_doc, net, proc

RULE = load_reverse_shell_rule()
LATENESS_MS = 5000
HOSTS = ["h1", "h2", "h3"]


@dataclass(frozen=True)
class Item:
    host: str
    kind: str  # "network" | "process"
    index: int  # position within its own stream
    event: BundledEvent


@st.composite
def host_streams(draw: st.DrawFn, host: str) -> tuple[list[Item], list[Item]]:
    # Small time range and few java pids: ties, replacements and 5.000/5.001 s gaps happen often.
    def times(count: int) -> list[int]:
        return sorted(draw(st.lists(st.sampled_from(_TIMES), min_size=count, max_size=count)))

    n_conn = draw(st.integers(0, 6))
    n_exec = draw(st.integers(0, 6))
    network: list[Item] = []
    for index, at in enumerate(times(n_conn)):
        ip = draw(st.sampled_from(["8.8.8.8", "8.8.8.8", "10.1.1.1", "::ffff:1.1.1.1"]))
        pid = draw(st.sampled_from([1, 2]))
        doc = conn_doc(T0 + at, host=host, pid=pid, ip=ip, event_id=f"{host}-c{index}")
        network.append(Item(host, "network", index, net(doc)))
    process: list[Item] = []
    for index, at in enumerate(times(n_exec)):
        name = draw(st.sampled_from(["bash", "sh", "python3"]))
        pid = draw(st.sampled_from([1, 2]))
        doc = exec_doc(T0 + at, host=host, parent_pid=pid, event_id=f"{host}-x{index}", process__name=name)
        process.append(Item(host, "process", index, proc(doc)))
    return network, process


_TIMES = [0, 1, 2, 999, 1000, 2000, 4999, 5000, 5001, 5002, 6000, 9999, 10_000, 10_001, 12_000]


def skewed_interleaving(draw: st.DrawFn, streams: dict[tuple[str, str], list[Item]]) -> list[Item | str]:
    """Merge the streams keeping each in order; a stream may only reach t once its host's other
    stream has emitted everything before t - LATENESS_MS. May also declare exhausted streams idle."""
    position = dict.fromkeys(streams, 0)
    out: list[Item | str] = []
    while True:
        eligible = []
        for (host, kind), items in streams.items():
            if position[(host, kind)] == len(items):
                continue
            at = items[position[(host, kind)]].event.timestamp_ms
            assert at is not None
            other = (host, "process" if kind == "network" else "network")
            rest = streams[other][position[other] :]
            if all(i.event.timestamp_ms is not None and i.event.timestamp_ms >= at - LATENESS_MS for i in rest):
                eligible.append((host, kind))
        if not eligible:
            return out
        choice = draw(st.sampled_from(sorted(eligible)))
        out.append(streams[choice][position[choice]])
        position[choice] += 1
        if position[choice] == len(streams[choice]) and draw(st.booleans()):
            out.append(f"idle:{choice[0]}:{choice[1]}")


def reference(items: list[Item]) -> list[tuple[str, str]]:
    rank = {"network": 0, "process": 1}
    ordered = sorted(items, key=lambda i: (i.event.timestamp_ms, rank[i.kind], i.index))
    pending: dict[tuple[str, str], NetworkEvent] = {}
    pairs = []
    for item in ordered:
        event = item.event
        if isinstance(event, NetworkEvent):
            if stage_clauses(RULE.network, event) is not None and event.entity_id:
                pending[(item.host, event.entity_id)] = event
        elif isinstance(event, ProcessEvent) and stage_clauses(RULE.process, event) is not None:
            key = (item.host, event.parent_entity_id or "")
            conn = pending.pop(key, None)
            assert event.timestamp_ms is not None
            gap = None if conn is None or conn.timestamp_ms is None else event.timestamp_ms - conn.timestamp_ms
            if conn is not None and gap is not None and gap <= RULE.maxspan_ms:
                pairs.append((conn.event_id or "", event.event_id or ""))
    return sorted(pairs)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Item], list[Item | str]]:
    hosts = HOSTS[: draw(st.integers(1, 3))]
    streams: dict[tuple[str, str], list[Item]] = {}
    for host in hosts:
        network, process = draw(host_streams(host))
        streams[(host, "network")] = network
        streams[(host, "process")] = process
    everything = [i for items in streams.values() for i in items]
    return everything, skewed_interleaving(draw, streams)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_skewed_interleaving_matches_event_time_order(scenario: tuple[list[Item], list[Item | str]]) -> None:
    everything, arrival = scenario
    correlator, matches = replay(arrival)
    assert pairs(matches) == reference(everything)
    assert correlator.stats.late == 0
    assert not any(m.late for m in matches)


def pairs(matches: list[Match]) -> list[tuple[str, str]]:
    return sorted((m.connection.event_id or "", m.execution.event_id or "") for m in matches)


def replay(arrival: list[Item | str], restart_at: int | None = None) -> tuple[Correlator, list[Match]]:
    """Feed the arrival order to a correlator (replaced by one restored from snapshots at ``restart_at``).

    As the worker does, after every step the hosts the correlator reports dirty are written to a store, and the
    restart restores from that store only: a change left out of ``drain_dirty`` is lost there."""
    correlator = Correlator(RULE, allowed_lateness_ms=LATENESS_MS)
    matches: list[Match] = []
    store: dict[str, bytes] = {}
    for index, step in enumerate(arrival):
        if index == restart_at:
            correlator = Correlator(RULE, allowed_lateness_ms=LATENESS_MS)
            for host, stored in store.items():
                matches.extend(correlator.import_host(host, HostSnapshot.from_bytes(stored)))
        if isinstance(step, str):
            _, host, kind = step.split(":")
            matches.extend(correlator.stream_idle("network" if kind == "network" else "process", [host]))
        else:
            matches.extend(correlator.observe(step.event))
        for host in correlator.drain_dirty():
            snapshot = correlator.export_host(host)
            if snapshot is None:
                store.pop(host, None)
            else:
                store[host] = snapshot.to_bytes()
    matches.extend(correlator.flush())
    return correlator, matches


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 60))
def test_snapshot_and_restore_mid_stream_changes_nothing(
    scenario: tuple[list[Item], list[Item | str]], cut: int
) -> None:
    """A worker restarted at any point, its state restored from snapshots, raises the same alerts."""
    everything, arrival = scenario
    _, matches = replay(arrival, restart_at=cut)
    assert pairs(matches) == reference(everything)
