"""The operator's EQL rules (``SHELLWATCH_RULES``) in the agent's record handling, without Kafka: Elastic's rule
file run verbatim beside the bundled rules, released by progress markers, its state mirrored to the store and
restored by a new worker, replays skipped, alerts in the alert contract; rules the worker cannot run refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
from fastavro.validation import validate

from shellwatch.core.pipeline import Pipeline, PipelineConfig, worker_refusal
from shellwatch.core.snapshot import HostSnapshot
from shellwatch.formats.alert_codec import avro_alert_record
from shellwatch.kafka.headers import AS_OF_HEADER, BROKER_TS_HEADER, PROGRESS_HEADER, REPLAY_HEADER, SOURCE_HEADER
from shellwatch.rules.eql_rule import EqlRule, load_eql_rule
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.worker.runtime import CorrelationRuntime
from tests.shared import DictStore
from tests.unit.builders import T0, conn_doc, exec_doc
from tests.unit.core.test_rule_runner import rule
from tests.unit.formats.test_schemas import load

VENDORED = Path(__file__).parents[2] / "rules" / "elastic"


def vendored(name: str) -> EqlRule:
    loaded = load_eql_rule(VENDORED / name)
    assert isinstance(loaded, EqlRule), loaded
    return loaded


ELASTIC_JAVA = vendored("execution_shell_via_java_revshell_linux.toml")
RULE, SHELL_RULE = load_reverse_shell_rule(), load_shell_rule()
NOW = T0 + 60_000


def runtime(store: DictStore, rules: list[EqlRule] | None = None) -> CorrelationRuntime:
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE, rules=[ELASTIC_JAVA] if rules is None else rules)
    return CorrelationRuntime(pipeline, store)


def forwarded(
    rt: CorrelationRuntime, doc: dict[str, Any], offset: int, *, replayed: bool = False
) -> list[dict[str, Any]]:
    """A record the prefilter stage forwarded from source partition 0 of its kind's topic, at ``offset``
    (``replayed``: ``shellwatch replay`` produced it, so it carries the replay header)."""
    topic = "src-network" if doc["event"]["category"] == ["network"] else "src-process"
    headers = {SOURCE_HEADER: f"{topic}/0/{offset}".encode(), BROKER_TS_HEADER: b"%d" % T0}
    if replayed:
        headers[REPLAY_HEADER] = b"replay-test"
    alerts = rt.handle(orjson.dumps(doc), headers, 0, NOW)
    rt.persist()
    return alerts


def marker(rt: CorrelationRuntime, kinds: bytes, *, as_of: int | None = None) -> list[dict[str, Any]]:
    headers = {PROGRESS_HEADER: kinds} | ({} if as_of is None else {AS_OF_HEADER: b"%d" % as_of})
    alerts = rt.handle(b"", headers, 0, NOW)
    rt.persist()
    return alerts


def by_rule(alerts: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alerts:
        counts[alert["rule"]["id"]] = counts.get(alert["rule"]["id"], 0) + 1
    return counts


def test_elastic_rule_file_runs_beside_the_bundled_rules_and_alerts_in_the_contract() -> None:
    rt = runtime(DictStore())
    alerts = forwarded(rt, conn_doc(T0), 1) + forwarded(rt, exec_doc(T0 + 1000), 1)
    alerts += marker(rt, b"network,process")
    assert by_rule(alerts) == {
        "potential-reverse-shell-via-java": 1,
        "shell-spawned-by-java": 1,
        ELASTIC_JAVA.rule_id: 1,
    }
    (elastic,) = [a for a in alerts if a["rule"]["id"] == ELASTIC_JAVA.rule_id]
    assert elastic["rule"]["version"] == f"sha256:{ELASTIC_JAVA.digest[:12]}"
    record = avro_alert_record(orjson.loads(orjson.dumps(elastic)))
    assert validate(record, fastavro.parse_schema(load("alert")), strict=True)


def test_a_new_worker_resumes_the_rule_from_the_store() -> None:
    store = DictStore()
    first = runtime(store)
    forwarded(first, conn_doc(T0), 1)
    marker(first, b"network,process")  # the connection is applied: a sequence waits for its exec
    state = HostSnapshot.from_bytes(store.data["host-a"].partition(b"\n")[2])
    assert state.rules is not None and state.rules["pending"]
    second = runtime(store)  # a new worker process, same changelog
    assert second.reload({0}, NOW) == []
    alerts = forwarded(second, exec_doc(T0 + 4000), 2) + marker(second, b"network,process")
    assert by_rule(alerts)[ELASTIC_JAVA.rule_id] == 1
    # without the operator's rule loaded, the same store restores the bundled rules only
    assert ELASTIC_JAVA.rule_id not in by_rule(runtime(store, rules=[]).reload({0}, NOW))


@pytest.mark.parametrize("restart", [False, True], ids=["same-worker", "after-restart"])
def test_alerts_of_replayed_records_say_so_for_the_rule_too(restart: bool) -> None:
    """``replay --expect`` requires ``detection.replayed`` on every alert the replay raises: the operator's rules'
    alerts too, and when the replayed connection waited in the changelog across a restart."""
    store = DictStore()
    rt = runtime(store)
    forwarded(rt, conn_doc(T0), 1, replayed=True)
    marker(rt, b"network,process")
    if restart:
        rt = runtime(store)
        rt.reload({0}, NOW)
    alerts = forwarded(rt, exec_doc(T0 + 1000), 1, replayed=True) + marker(rt, b"network,process")
    assert sorted(by_rule(alerts)) == sorted(
        ["potential-reverse-shell-via-java", "shell-spawned-by-java", ELASTIC_JAVA.rule_id]
    )
    assert all(alert["detection"]["replayed"] for alert in alerts)
    live = runtime(DictStore())
    forwarded(live, conn_doc(T0), 1)
    assert not any(
        a["detection"]["replayed"] for a in forwarded(live, exec_doc(T0 + 1000), 1) + marker(live, b"network,process")
    )


def test_a_replayed_connection_never_pairs_twice_for_the_rule() -> None:
    store = DictStore()
    first = runtime(store)
    forwarded(first, conn_doc(T0), 7)
    forwarded(first, exec_doc(T0 + 1000), 3)
    assert by_rule(marker(first, b"network,process"))[ELASTIC_JAVA.rule_id] == 1
    second = runtime(store)
    second.reload({0}, NOW)
    forwarded(second, conn_doc(T0), 7)  # re-forwarded after a crash: same source position
    assert second.skipped_replays == 1
    alerts = forwarded(second, exec_doc(T0 + 2000, pid=4243), 4) + marker(second, b"network,process")
    assert ELASTIC_JAVA.rule_id not in by_rule(alerts)


def test_a_host_only_the_rule_holds_state_for_is_kept() -> None:
    exec_first = rule(
        """sequence by host.id with maxspan=10s
[process where event.action == "exec"] by process.entity_id
[network where event.action == "connect"] by process.entity_id""",
        rule_id="exec-then-connect",
    )
    store = DictStore()
    rt = runtime(store, rules=[exec_first])
    doc: dict[str, Any] = {"@timestamp": T0, "event": {"id": "x1", "category": ["process"], "action": "exec"}}
    doc |= {"host": {"id": "h-only"}, "process": {"entity_id": "e1", "parent": {"executable": "/bin/bash"}}}
    rt.handle(orjson.dumps(doc), {}, 0, NOW)
    rt.persist()
    assert rt.pipeline.correlator.export_host("h-only") is None  # the bundled rules keep nothing of it
    held = HostSnapshot.from_bytes(store.data["h-only"].partition(b"\n")[2])
    assert held.rules is not None and held.rules["held"] and not held.rules["pending"]
    marker(rt, b"network,process")  # applied: the sequence waits for its connection
    pending = HostSnapshot.from_bytes(store.data["h-only"].partition(b"\n")[2])
    assert pending.rules is not None and pending.rules["pending"] and not pending.rules["held"]
    restarted = runtime(store, rules=[exec_first])
    restarted.reload({0}, NOW)
    connect = {**doc, "@timestamp": T0 + 500, "event": {"id": "c1", "category": ["network"], "action": "connect"}}
    alerts = restarted.handle(orjson.dumps(connect), {}, 0, NOW) + marker(restarted, b"network,process")
    assert by_rule(alerts) == {"exec-then-connect": 1}


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("sequence by user.name [network where true] [process where true]", "joins on user.name | user.name"),
        ("sequence by user.name [file where true] [process where true]", "joins on user.name | user.name"),
    ],
)
def test_rules_the_worker_cannot_run_are_refused_with_the_reason(query: str, reason: str) -> None:
    refused = rule(query, rule_id="refused")
    assert reason in (worker_refusal(refused) or "")
    with pytest.raises(ValueError, match=reason.replace("|", r"\|")):
        Pipeline(RULE, PipelineConfig(), rules=[refused])


CUPS_FILE = vendored("execution_cupsd_foomatic_rip_file_creation.toml")


def cups_docs(t0: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A shell that foomatic-rip started, and a file its child created 2 s later: the vendored rule's sequence."""
    host = {"id": "host-p", "os": {"type": "linux"}}
    shell: dict[str, Any] = {"@timestamp": t0, "host": host, "event": {"id": "p1", "category": ["process"]}}
    shell["event"] |= {"type": ["start"], "action": "exec"}
    shell["process"] = {"name": "sh", "entity_id": "sh-1", "parent": {"name": "foomatic-rip", "entity_id": "fr-1"}}
    created: dict[str, Any] = {"@timestamp": t0 + 2000, "host": host, "event": {"id": "f1", "category": ["file"]}}
    created["event"] |= {"type": ["creation"], "action": "creation"}
    created["process"] = {"name": "curl", "entity_id": "curl-1", "parent": {"entity_id": "sh-1"}}
    created["file"] = {"path": "/tmp/x.sh", "name": "x.sh"}
    return shell, created


def test_a_rule_reading_file_events_runs_in_the_worker() -> None:
    """A ``file where`` stage adds the file input: the decode yields its events, the rule's sequence completes,
    and its held events wait for every input's marker, sent at different times."""
    rt = runtime(DictStore(), rules=[CUPS_FILE])
    assert rt.pipeline.inputs == ("network", "process", "file")
    shell, created = cups_docs(T0)
    assert [e.kind for e in rt.pipeline.decode(orjson.dumps(created)).events] == ["file"]  # type: ignore[union-attr]
    headers = {SOURCE_HEADER: b"src-file/0/1", BROKER_TS_HEADER: b"%d" % T0}
    assert forwarded(rt, shell, 1) == []
    assert rt.handle(orjson.dumps(created), headers, 0, NOW) == []
    assert rt.pipeline.host_rules is not None and rt.pipeline.host_rules.held_count == 2
    # the file stream is past the shell, but the file event waits for the network and process inputs
    assert marker(rt, b"network", as_of=NOW) == []
    alerts = marker(rt, b"process", as_of=NOW + 250)  # the network marker 250 ms before still counts
    assert by_rule(alerts) == {CUPS_FILE.rule_id: 1}
    quoted = orjson.loads(orjson.dumps(alerts[0]))["detection"]["events"]
    assert [e["event"]["id"] for e in quoted] == ["p1", "f1"]


def test_an_input_marker_too_old_does_not_count_with_another() -> None:
    rt = runtime(DictStore(), rules=[CUPS_FILE])
    shell, created = cups_docs(T0)
    forwarded(rt, shell, 1)
    rt.handle(orjson.dumps(created), {SOURCE_HEADER: b"src-file/0/1", BROKER_TS_HEADER: b"%d" % T0}, 0, NOW)
    assert marker(rt, b"network", as_of=NOW) == []
    assert marker(rt, b"process", as_of=NOW + 5000) == []  # the network input may have fallen behind since
    assert by_rule(marker(rt, b"network", as_of=NOW + 5100)) == {CUPS_FILE.rule_id: 1}


def test_a_rule_with_a_bundled_rule_id_is_refused() -> None:
    clash = rule("process where true", rule_id="shell-spawned-by-java")
    assert "has the rule_id of a bundled rule" in (worker_refusal(clash, ["shell-spawned-by-java"]) or "")


def test_the_prefilter_keeps_what_the_rules_need() -> None:
    git_hook = vendored("persistence_git_hook_execution.toml")
    bundled = Pipeline(RULE, PipelineConfig(), SHELL_RULE)
    both = Pipeline(RULE, PipelineConfig(), SHELL_RULE, rules=[git_hook])
    hook: dict[str, Any] = {"@timestamp": T0, "event": {"category": ["process"], "type": ["start"], "action": "exec"}}
    hook |= {"host": {"id": "h", "os": {"type": "linux"}}}
    hook |= {"process": {"name": "sh", "args": [".git/hooks/pre-commit"], "parent": {"name": "git"}}}
    raw = orjson.dumps(hook)
    assert not bundled.prefilter.accepts(raw)  # no Java in it
    assert both.prefilter.accepts(raw)
    assert both.prefilter_off_reason is None
