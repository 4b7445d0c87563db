"""The EQL rule runner (``detect --rules``): the hand table of sequence semantics, including every point where
Elastic's ``eql`` 1.0.1 differs from Elasticsearch (so the differential test cannot judge it), and the CLI on
a rule file that was never vendored, judged by the differential machinery."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.__main__ import main
from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.core.rule_runner import RuleRunner, RunnerConfig
from shellwatch.core.sequence_engine import Candidate, SequenceEngine
from shellwatch.rules.eql_rule import EqlRule, load_eql_rules, parse_eql_rule
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from tests.unit.eql.test_differential_sequences import (
    StagePool,
    eql_matches,
    eql_query,
    our_matches,
    parse_for_eql,
    stage_pools,
    stream,
)

T0 = 1_700_000_000_000
SAMPLES = Path(__file__).parents[3] / "src" / "shellwatch" / "samples"


def rule_file(query: str, *, rule_id: str = "test-rule", extra: str = "") -> str:
    return f"""
[metadata]
creation_date = "2025/01/01"

[rule]
rule_id = "{rule_id}"
name = "Test rule"
severity = "high"
risk_score = 73
language = "eql"
type = "eql"
{extra}
query = '''
{query}
'''

[[rule.threat]]
framework = "MITRE ATT&CK"
[rule.threat.tactic]
id = "TA0002"
name = "Execution"
reference = "https://attack.mitre.org/tactics/TA0002/"
"""


def rule(query: str, **kwargs: Any) -> EqlRule:
    loaded = parse_eql_rule(rule_file(query, **kwargs), "test.toml")
    assert isinstance(loaded, EqlRule), loaded
    return loaded


TWO_STAGES = rule(
    """sequence by host.id with maxspan=5s
[network where event.action == "connect"] by process.entity_id
[process where event.action == "exec"] by process.parent.entity_id"""
)


def conn(name: str, t_ms: int, entity: str | None = "p1", host: str = "h1") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": T0 + t_ms,
        "event": {"id": name, "category": ["network"], "action": "connect"},
        "host": {"id": host},
    }
    if entity is not None:
        doc["process"] = {"entity_id": entity}
    return doc


def exe(name: str, t_ms: int, parent: str | None = "p1", host: str = "h1") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": T0 + t_ms,
        "event": {"id": name, "category": ["process"], "action": "exec"},
        "host": {"id": host},
        "process": {"entity_id": "e-" + name},
    }
    if parent is not None:
        doc["process"]["parent"] = {"entity_id": parent}
    return doc


def run(rules: list[EqlRule], docs: list[dict[str, Any]], lateness_ms: int = 5000) -> tuple[list[Any], RuleRunner]:
    runner = RuleRunner(rules, RunnerConfig(allowed_lateness_ms=lateness_ms))
    alerts: list[Any] = []
    for doc in docs:
        outcome = runner.process(orjson.dumps(doc), 0)
        assert outcome.error is None
        alerts.extend(outcome.alerts)
    alerts.extend(runner.flush(0))
    return alerts, runner


def pairs(alerts: list[Any]) -> list[tuple[str, ...]]:
    return [tuple(orjson.loads(orjson.dumps(e))["event"]["id"] for e in a["detection"]["events"]) for a in alerts]


CASES: dict[str, tuple[list[dict[str, Any]], list[tuple[str, ...]]]] = {
    # DESIGN §3.4: newest pending sequence per key and stage wins; consumed on completion
    "newest_wins": ([conn("c0", 0), conn("c2", 2000), exe("x", 6000)], [("c2", "x")]),
    "consumed": ([conn("c", 0), exe("x1", 1000), exe("x2", 2000)], [("c", "x1")]),
    "two_rounds": ([conn("c1", 0), exe("x1", 1), conn("c2", 2), exe("x2", 3)], [("c1", "x1"), ("c2", "x2")]),
    # §3.3: maxspan inclusive
    "maxspan_inclusive": ([conn("c", 0), exe("x", 5000)], [("c", "x")]),
    "maxspan_exceeded": ([conn("c", 0), exe("x", 5001)], []),
    "expired_then_newer": ([conn("c0", 0), conn("c7", 7000), exe("x", 9000)], [("c7", "x")]),
    "other_host": ([conn("c", 0, host="h1"), exe("x", 10, host="h2")], []),
    # eql 1.0.1 joins a missing key with a missing key; Elasticsearch never joins one
    "missing_keys_never_join": ([conn("c", 0, entity=None), exe("x", 10, parent=None)], []),
    # arrival order does not matter within the allowed lateness: ordered by @timestamp
    "exec_arrives_first": ([exe("x", 1000), conn("c", 0)], [("c", "x")]),
    # same millisecond across inputs (network, process): the one that fills the earlier stage first
    "same_ms_across_inputs": ([exe("x", 0), conn("c", 0)], [("c", "x")]),
    # an exec before its connection in time never pairs
    "exec_before_conn": ([exe("x", 0), conn("c", 1)], []),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_stage_semantics(name: str) -> None:
    docs, expected = CASES[name]
    alerts, _ = run([TWO_STAGES], docs)
    assert pairs(alerts) == expected


def proc(name: str, t_ms: int, action: str, key: Any = "k", host: str = "h1") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": T0 + t_ms,
        "event": {"id": name, "category": ["process"], "action": action},
        "host": {"id": host},
    }
    if key is not None:
        doc["user"] = {"name": key}
    return doc


PROCESS_TWO = rule(
    """sequence by host.id, user.name with maxspan=5s
[process where event.action == "a"]
[process where event.action == "b"]"""
)


def test_same_millisecond_within_one_input_keeps_read_order() -> None:
    # both events are read from one input (the process stream): its order is the order they happened
    alerts, _ = run([PROCESS_TWO], [proc("b", 0, "b"), proc("a", 0, "a")])
    assert pairs(alerts) == []
    alerts, _ = run([PROCESS_TWO], [proc("a", 0, "a"), proc("b", 0, "b")])
    assert pairs(alerts) == [("a", "b")]


def test_runs_are_consecutive_identical_stages() -> None:
    runs = rule('sequence by host.id with maxspan=10s\n[process where event.action == "a"] with runs=3')
    three = [proc(f"a{i}", i, "a") for i in range(3)]
    assert pairs(run([runs], three)[0]) == [("a0", "a1", "a2")]
    assert pairs(run([runs], three[:2])[0]) == []
    # every event also starts a sequence of its own, so runs slide: Elasticsearch tracks each stage-0 hit and
    # extends the latest sequence strictly before each later hit (SequenceMatcher.match, trimBefore)
    seven = [proc(f"a{i}", i, "a") for i in range(7)]
    assert pairs(run([runs], seven)[0]) == [(f"a{i}", f"a{i + 1}", f"a{i + 2}") for i in range(5)]


def test_one_event_never_fills_two_stages_of_one_sequence() -> None:
    both = rule('sequence by host.id\n[process where event.action == "a"]\n[process where event.action : "*"]')
    assert pairs(run([both], [proc("a1", 0, "a")])[0]) == []
    assert pairs(run([both], [proc("a1", 0, "a"), proc("a2", 1, "a")])[0]) == [("a1", "a2")]


def test_optional_key_joins_when_missing() -> None:
    optional = rule(
        'sequence by host.id, ?user.name\n[process where event.action == "a"]\n[process where event.action == "b"]'
    )
    docs = [proc("a", 0, "a", key=None), proc("b", 1, "b", key=None)]
    assert pairs(run([optional], docs)[0]) == [("a", "b")]
    assert pairs(run([PROCESS_TWO], docs)[0]) == []


def test_key_values_compare_as_elasticsearch_indexes_them() -> None:
    # eql 1.0.1 compares the raw JSON: a scalar differs from a one-element list, and addresses by their text
    by_ip = rule('sequence by source.ip\n[process where event.action == "a"]\n[process where event.action == "b"]')
    a = proc("a", 0, "a") | {"source": {"ip": "::ffff:10.0.0.1"}}
    b = proc("b", 1, "b") | {"source": {"ip": ["10.0.0.1"]}}
    assert pairs(run([by_ip], [a, b])[0]) == [("a", "b")]


def test_timestamp_override_still_orders_by_timestamp() -> None:
    overridden = rule(
        'sequence by host.id\n[process where event.action == "a"]\n[process where event.action == "b"]',
        extra='timestamp_override = "event.ingested"',
    )
    a = proc("a", 0, "a") | {"event": {"id": "a", "category": ["process"], "action": "a", "ingested": T0 + 9}}
    b = proc("b", 1, "b") | {"event": {"id": "b", "category": ["process"], "action": "b", "ingested": T0}}
    assert pairs(run([overridden], [a, b])[0]) == [("a", "b")]


def test_late_events_are_applied_best_effort_and_counted() -> None:
    alerts, runner = run([TWO_STAGES], [conn("c", 10_000), exe("x", 20_000), exe("old", 1000)], lateness_ms=100)
    assert runner.late == 1
    assert pairs(alerts) == []


def test_event_queries_alert_per_event() -> None:
    single = rule('process where event.action == "a"')
    alerts, _ = run([single], [proc("a1", 0, "a"), proc("b", 1, "b"), proc("a2", 1, "a")])
    assert pairs(alerts) == [("a1",), ("a2",)]


def test_alert_document_carries_the_rule_file() -> None:
    alerts, _ = run([TWO_STAGES], [conn("c", 0), exe("x", 1200)])
    (alert,) = alerts
    version = f"sha256:{TWO_STAGES.digest[:12]}"  # the file has no version: its digest says which revision ran
    assert alert["rule"] == {"id": "test-rule", "uuid": None, "name": "Test rule", "version": version, "reference": ""}
    assert alert["event"]["severity"] == 73 and alert["event"]["risk_score"] == 73
    assert alert["detection"]["severity"] == "high"
    assert alert["threat"][0]["tactic"]["id"] == "TA0002"
    explanation = alert["detection"]["explanation"]
    assert explanation["span_ms"] == 1200 and explanation["maxspan_ms"] == 5000
    assert [s["join_key"] for s in explanation["stages"]] == [
        {"host.id": "h1", "process.entity_id": "p1"},
        {"host.id": "h1", "process.parent.entity_id": "p1"},
    ]


def test_state_is_bounded_and_evicted_per_scope() -> None:
    engine = SequenceEngine(TWO_STAGES.compiled, max_keys=3)
    flat_of = TWO_STAGES.compiled.flatten
    for i in range(10):
        doc = conn(f"c{i}", i, entity=f"p{i}")
        engine.apply(Candidate(i, T0 + i, "network", flat_of(doc), (0,), None), "h1")
    assert engine.pending_count() == 3 and engine.evicted_by_cap == 7
    other = conn("o", 0, entity="q", host="h2")
    engine.apply(Candidate(99, T0, "network", flat_of(other), (0,), None), "h2")
    assert engine.evict(T0 + 60_000, "h1") == 2  # h1's own time: h2's sequence stays
    assert engine.pending_count() == 1


def test_seed_query_as_a_rule_file_keeps_todays_alert_ids() -> None:
    seed = load_reverse_shell_rule()
    as_file = rule(seed.query.strip(), rule_id=seed.meta.id)
    sample = (SAMPLES / "sample-attack.ndjson").read_bytes().splitlines()
    pipeline = Pipeline(seed, PipelineConfig(), load_shell_rule())
    today = []
    for line in sample:
        today += [a["event"]["id"] for a in pipeline.process(line, 0).alerts if a["rule"]["id"] == seed.meta.id]
    today += [a["event"]["id"] for a in pipeline.flush(0) if a["rule"]["id"] == seed.meta.id]
    alerts, _ = run([as_file], [orjson.loads(line) for line in sample])
    assert today and sorted(a["event"]["id"] for a in alerts) == sorted(today)


NEVER_VENDORED = """sequence by host.id with maxspan=20s
[process where event.type == "start" and process.name in ("curl", "wget") and
 (process.args : "*http*" or process.command_line like~ "*--output*")] by process.entity_id
[file where event.action == "creation" and file.path : ("/tmp/*", "/dev/shm/*") and
 not file.extension in ("log", "txt")] by process.entity_id
[process where event.type == "start" and startsWith~(process.executable, "/TMP/") and
 length(process.name) >= 2] by process.parent.entity_id with runs=2"""


def test_detect_rules_on_a_never_vendored_rule_agrees_with_eql(tmp_path: Path, capsys: Any) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "download_then_run.toml").write_text(rule_file(NEVER_VENDORED, rule_id="download-then-run"))
    (rules_dir / "notes.toml").write_text('[metadata]\nnote = "not a rule"\n')
    (new_rule,) = load_eql_rules([rules_dir]).rules
    parsed = parse_for_eql(eql_query(new_rule))
    rng = random.Random(7)
    pools: list[StagePool] = stage_pools(new_rule.compiled, new_rule.compiled.query, rng)
    docs: list[dict[str, Any]] = []
    for _ in range(80):
        part = stream(new_rule, pools, rng)
        shift = (docs[-1]["@timestamp"] - T0 + 60_000) if docs else 0
        for doc in part:
            doc["@timestamp"] += shift
        docs.extend(part)
    for index, doc in enumerate(docs):
        doc["test"] = {"index": index}
    expected = eql_matches(parsed, docs)
    lines = tmp_path / "events.ndjson"
    lines.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    assert main(["detect", "--rules", str(rules_dir), "--no-mask-secrets", str(lines)]) == 0
    out, err = capsys.readouterr()
    alerts = [orjson.loads(line) for line in out.splitlines()]
    print(f"\nnever-vendored rule: {len(docs)} events, {sum(expected.values())} eql matches, {len(alerts)} alerts")
    assert our_matches(alerts) == expected
    assert sum(expected.values()) >= 3
    assert {a["rule"]["id"] for a in alerts} == {"download-then-run"}
    assert len({a["event"]["id"] for a in alerts}) == len(alerts)
    assert f"{len(docs)} lines read, 0 undecodable" in err
