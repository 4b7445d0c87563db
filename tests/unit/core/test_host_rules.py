"""Host-local EQL rules over several live inputs (``shellwatch.core.host_rules``): the same matches as the
offline rule runner on time-ordered input whatever the inputs' lag, held until every input has gone past an
event, idle and lateness releases, late events, bounds, exceptions, and snapshots that restore mid-stream
without changing a match."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import orjson
import pytest

from shellwatch.core.host_rules import HostRules, NotHostLocalError, RuleMatch
from shellwatch.core.rule_runner import RuleRunner, RunnerConfig
from shellwatch.rules.eql_rule import EqlRule
from tests.unit.core.test_rule_runner import T0, TWO_STAGES, conn, exe, rule
from tests.unit.rules.test_exceptions import entry, exception_list, item, parsed

INPUTS = ("network", "process")
EXEC_THEN_TWO_CONNECTIONS = rule(
    """sequence by host.id with maxspan=3s
[process where event.action == "exec"] by process.parent.entity_id
[network where event.action == "connect"] by process.entity_id with runs=2""",
    rule_id="exec-then-two-connections",
)
EXEC_OF_P1 = rule('process where event.action == "exec" and process.parent.entity_id == "p1"', rule_id="exec-of-p1")
RULES = [TWO_STAGES, EXEC_THEN_TWO_CONNECTIONS, EXEC_OF_P1]

Fed = tuple[str, dict[str, Any]]  # (input, document)
Found = tuple[str, tuple[str, ...]]  # (rule id, event ids in stage order)


def found(matches: list[RuleMatch]) -> list[Found]:
    return [(m.rule.rule_id, tuple(c.payload.document["event"]["id"] for c in m.match.events)) for m in matches]


def offline(rules: list[EqlRule], fed: list[Fed]) -> list[Found]:
    """The reference: the offline runner on the events in time order (each input's order kept on ties)."""
    runner = RuleRunner(rules, RunnerConfig(allowed_lateness_ms=0))
    alerts: list[dict[str, Any]] = []
    for _, doc in sorted(fed, key=lambda f: f[1]["@timestamp"]):
        alerts.extend(runner.process(orjson.dumps(doc), 0).alerts)
    alerts.extend(runner.flush(0))
    return [
        (a["rule"]["id"], tuple(orjson.loads(orjson.dumps(e))["event"]["id"] for e in a["detection"]["events"]))
        for a in alerts
    ]


def feed(rules: HostRules, fed: list[Fed]) -> list[Found]:
    out: list[Found] = []
    for source, doc in fed:
        outcome = rules.observe(orjson.dumps(doc), source)
        assert outcome.error is None
        out.extend(found(outcome.matches))
    return out


def scenario(seed: int, hosts: int = 3, per_input: int = 40, max_lag_ms: int = 2000) -> list[Fed]:
    """Each host's two inputs in time order (network on even, process on odd milliseconds, so the reference
    order has no ties across inputs; a fifth of the events fill no stage), interleaved at random with one
    input up to ``max_lag_ms`` ahead."""
    rng = random.Random(seed)
    streams: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for h in range(hosts):
        host = f"h{h}"
        for source in INPUTS:
            t, docs = 0, []
            for n in range(per_input):
                t += rng.randrange(1, 400)
                ms = t * 2 + (1 if source == "process" else 0)
                entity = f"p{rng.randrange(3)}"
                name = f"{host}-{source[0]}{n}"
                doc = conn(name, ms, entity=entity, host=host) if source == "network" else exe(name, ms, entity, host)
                if rng.random() < 0.2:
                    doc["event"]["action"] = "end"  # no rule's stage: it only moves its input on
                docs.append(doc)
            streams[host, source] = docs
    fed: list[Fed] = []
    while any(streams.values()):
        ready = []
        for (host, source), docs in streams.items():
            if not docs:
                continue
            other = streams[host, "process" if source == "network" else "network"]
            if not other or docs[0]["@timestamp"] <= other[0]["@timestamp"] + max_lag_ms:
                ready.append((host, source))
        host, source = rng.choice(ready)
        fed.append((source, streams[host, source].pop(0)))
    return fed


@pytest.mark.parametrize("seed", range(25))
def test_any_lagged_interleaving_matches_the_offline_runner(seed: int) -> None:
    fed = scenario(seed)
    live = HostRules(RULES, INPUTS)
    matches = feed(live, fed) + found(live.flush())
    expected = offline(RULES, fed)
    assert sorted(matches) == sorted(expected)
    assert len(expected) > 5  # the scenarios do exercise the rules
    # Nothing was applied out of order (an input that ran out lets the other run ahead of the lateness bound:
    # its releases are then exact too, as nothing more comes from the input that ran out).
    assert live.stats.late == 0


@pytest.mark.parametrize("seed", range(25))
def test_snapshot_and_restore_mid_stream_changes_nothing(seed: int) -> None:
    """The worker persists every host the rules report dirty, after every record; a restart restores from
    that store only (JSON round trip included), then reads on."""
    fed = scenario(seed)
    uninterrupted = HostRules(RULES, INPUTS)
    expected = feed(uninterrupted, fed) + found(uninterrupted.flush())
    cut = random.Random(seed).randrange(len(fed))
    first = HostRules(RULES, INPUTS)
    store: dict[str, bytes] = {}
    matches: list[Found] = []
    for source, doc in fed[:cut]:
        matches.extend(found(first.observe(orjson.dumps(doc), source).matches))
        for host in first.drain_dirty():
            snapshot = first.export_host(host)
            if snapshot is None:
                store.pop(host, None)
            else:
                store[host] = orjson.dumps(snapshot)
    second = HostRules(RULES, INPUTS)
    for host, data in store.items():
        matches.extend(found(second.import_host(host, orjson.loads(data))))
    matches.extend(feed(second, fed[cut:]) + found(second.flush()))
    assert sorted(matches) == sorted(expected)
    assert second.stats.restored_dropped == 0


def test_an_event_is_held_until_every_other_input_has_gone_past_it() -> None:
    live = HostRules([TWO_STAGES], INPUTS)
    assert found(live.observe(orjson.dumps(exe("x", 2000)), "process").matches) == []
    # The connection goes at once (the process input is past it); the exec waits for the network input.
    assert found(live.observe(orjson.dumps(conn("c", 1000)), "network").matches) == []
    assert live.held_count == 1
    assert found(live.advance("network", T0 + 2000)) == []  # not past 2000 yet: more at 2000 may come
    assert found(live.advance("network", T0 + 2001)) == [(TWO_STAGES.rule_id, ("c", "x"))]
    assert live.held_count == 0


def test_an_idle_input_holds_nothing_back_at_that_moment() -> None:
    live = HostRules([TWO_STAGES], INPUTS)
    live.observe(orjson.dumps(conn("c", 1000)), "network")
    live.observe(orjson.dumps(exe("x", 2000)), "process")
    assert found(live.stream_idle(["process"])) == []  # c went already; the exec waits for the network input
    assert found(live.stream_idle(["network"])) == [(TWO_STAGES.rule_id, ("c", "x"))]
    live.observe(orjson.dumps(exe("y", 3000)), "process")  # the marker was a moment: the next exec waits again
    assert live.held_count == 1


def test_lateness_releases_and_late_events_are_counted() -> None:
    live = HostRules([TWO_STAGES], INPUTS, allowed_lateness_ms=5000)
    live.observe(orjson.dumps(conn("c", 1000)), "network")
    live.observe(orjson.dumps(conn("c-new", 7000)), "network")  # the process input never came: 6 s of lag
    assert live.stats.lateness_releases == 1 and live.held_count == 1
    # An exec older than what was released is late: applied at once, best effort (before c: no match).
    assert found(live.observe(orjson.dumps(exe("x", 900)), "process").matches) == []
    assert live.stats.late == 1
    # One newer than that goes at once: the network input is past it.
    assert found(live.observe(orjson.dumps(exe("y", 1500)), "process").matches) == [(TWO_STAGES.rule_id, ("c", "y"))]
    assert live.stats.late == 1 and live.stats.lateness_releases == 1


def test_a_held_millisecond_across_inputs_goes_earlier_stage_first() -> None:
    live = HostRules([TWO_STAGES], INPUTS)
    live.observe(orjson.dumps(exe("x", 1000)), "process")  # the exec arrives first, same millisecond
    live.observe(orjson.dumps(conn("c", 1000)), "network")
    assert live.held_count == 2  # a millisecond of both inputs waits for both to go past it
    assert found(live.advance("network", T0 + 1001) + live.advance("process", T0 + 1001)) == [
        (TWO_STAGES.rule_id, ("c", "x"))
    ]


def test_hosts_progress_apart() -> None:
    live = HostRules([TWO_STAGES], INPUTS)
    live.observe(orjson.dumps(conn("c", 1000, host="h1")), "network")
    live.observe(orjson.dumps(exe("x", 1500, host="h1")), "process")
    live.observe(orjson.dumps(conn("d", 90_000, host="h2")), "network")  # another host's clock
    live.observe(orjson.dumps(exe("y", 90_500, host="h2")), "process")
    assert live.stats.lateness_releases == 0 and live.held_count == 2  # each exec waits for its network input
    assert sorted(found(live.flush())) == [(TWO_STAGES.rule_id, ("c", "x")), (TWO_STAGES.rule_id, ("d", "y"))]


def test_bounds_force_releases_and_evict_hosts_after_applying_them() -> None:
    live = HostRules([TWO_STAGES], INPUTS, max_held_per_host=2, max_hosts=1)
    live.observe(orjson.dumps(conn("c", 1000)), "network")
    live.observe(orjson.dumps(exe("x", 1200)), "process")  # c goes; x waits for the network input
    live.observe(orjson.dumps(exe("y", 1300)), "process")
    forced = live.observe(orjson.dumps(exe("z", 1400)), "process")  # a third held event: the oldest goes early
    assert found(forced.matches) == [(TWO_STAGES.rule_id, ("c", "x"))]
    assert live.stats.forced_releases == 1 and live.held_count == 2
    live.observe(orjson.dumps(conn("c3", 1350)), "network")  # y and c3 go; z waits
    assert live.held_count == 1
    evicting = live.observe(orjson.dumps(conn("d", 5000, host="h2")), "network")  # h1 is applied, then evicted
    assert found(evicting.matches) == [(TWO_STAGES.rule_id, ("c3", "z"))]
    assert live.stats.evicted_hosts == 1 and live.host_count == 1
    assert "h1" in live.drain_dirty() and live.export_host("h1") is None


def test_a_rule_that_is_not_host_local_is_refused_with_the_reason() -> None:
    by_user = rule(
        'sequence by user.name [network where true] [process where event.action == "exec"]', rule_id="by-user"
    )
    with pytest.raises(NotHostLocalError, match=r"rule by-user \(test.toml\) joins on user.name \| user.name"):
        HostRules([TWO_STAGES, by_user], INPUTS)


def test_exceptions_leave_events_out() -> None:
    excepting = replace(TWO_STAGES, exceptions=(parsed(exception_list(item("ci", entry("host.id", "match", '"h1"')))),))
    live = HostRules([excepting], INPUTS)
    fed = [("network", conn("c", 0)), ("process", exe("x", 10)), ("network", conn("d", 0, host="h2"))]
    fed.append(("process", exe("y", 10, host="h2")))
    assert feed(live, fed) + found(live.flush()) == [(TWO_STAGES.rule_id, ("d", "y"))]
    assert live.stats.excepted == {(TWO_STAGES.rule_id, "Build farm: ci"): 2}


def test_restoring_under_a_changed_rule_drops_what_it_no_longer_accepts() -> None:
    live = HostRules([TWO_STAGES], INPUTS)
    live.observe(orjson.dumps(conn("c", 1000)), "network")
    live.advance("network", T0 + 2000)
    live.advance("process", T0 + 2000)
    snapshot = live.export_host("h1")
    assert snapshot is not None and snapshot["pending"] and not snapshot["held"]
    changed = rule(TWO_STAGES.query.replace('"connect"', '"connection_attempted"'), rule_id=TWO_STAGES.rule_id)
    restored = HostRules([changed], INPUTS)
    assert restored.import_host("h1", orjson.loads(orjson.dumps(snapshot))) == []
    assert restored.stats.restored_dropped == 1 and restored.pending_count() == 0
    with pytest.raises(ValueError, match="version"):
        restored.import_host("h1", {**snapshot, "v": 99})
