"""``shellwatch replay --expect`` and ``shellwatch record`` against the real broker and a real worker.

Every scenario of tests/replay/scenarios is replayed into one worker deployment (the scenarios' hosts and
event ids are distinct); a deliberately wrong expectation must fail with a diff; and a capture recorded
from a second cluster replays into the worker's topics with the same alerts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from shellwatch.core.pipeline import worker_inputs
from shellwatch.kafka.admin import create_topic
from shellwatch.local.kafka import LocalKafka
from shellwatch.rules.eql_rule import load_eql_rules
from tests.integration.deployment import Deployment
from tests.replay.build_scenarios import SCENARIO_DIR, SCENARIOS

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployed = Deployment(kafka_bootstrap, tmp_path_factory.mktemp("replay"))
    deployed.start_worker()
    deployed.wait_ready()
    yield deployed
    deployed.stop()


def shellwatch(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shellwatch", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)


def replay(deployment: Deployment, events: Path, expected: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return shellwatch(
        deployment.env(), "replay", events, "--expect", expected, "--timeout", "90", "--settle", "2", *extra
    )


def expected_count(path: Path) -> int:
    return sum(1 for line in path.read_bytes().splitlines() if line.strip())


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if not s.rules))
def test_scenario_passes_through_a_real_replay(deployment: Deployment, name: str) -> None:
    check_replay(deployment, name)


@pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if s.rules))
def test_elastic_rule_scenario_passes_through_a_worker_given_its_rules(
    kafka_bootstrap: str, tmp_path: Path, name: str
) -> None:
    """As a user runs one of Elastic's rules: its file in a rules directory, the worker (re)started with
    ``SHELLWATCH_RULES`` naming that directory, then the rule's scenario replayed with ``--expect`` (which sends
    each record to the topic of its input: the file events of ``elastic-cupsd-file`` to the file topic)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    for rule in SCENARIOS[name].rules:
        shutil.copy(SCENARIO_DIR / name / "rules" / rule, rules / rule)
    others = worker_inputs(load_eql_rules([rules]).rules)[2:]  # a file where stage reads the file topic
    deployed = Deployment(kafka_bootstrap, tmp_path, other_inputs=others)
    deployed.extra_env["SHELLWATCH_RULES"] = str(rules)
    try:
        deployed.start_worker()
        deployed.wait_ready()
        out = check_replay(deployed, name)
        lines = (SCENARIO_DIR / name / "events.ndjson").read_bytes().splitlines()
        for category, topic in deployed.others.items():  # each input's events went to its own topic
            count = sum(category in orjson.loads(line)["event"]["category"] for line in lines)
            assert count and f"  {topic}: {count}" in out, out
    finally:
        deployed.stop()


def check_replay(deployment: Deployment, name: str) -> list[str]:
    """Replays the scenario with ``--expect``, checks it passed; returns what the replay printed."""
    folder = SCENARIO_DIR / name
    result = replay(deployment, folder / "events.ndjson", folder / "expected.ndjson")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    count = expected_count(folder / "expected.ndjson")
    assert f"expect: PASS: {count} matched, 0 missing, 0 unexpected, 0 wrong case" in out
    matched = [line for line in out if line.startswith("  matched")]
    assert len(matched) == count and all(" latency " in line for line in matched)
    events = expected_count(folder / "events.ndjson")
    assert out[0].startswith("replay replay-") and f": {events} records produced" in out[0]
    return out


def renamed(text: bytes, tag: str) -> bytes:
    """The scenario with its own hosts and event ids, so it is independent of the other tests' replays."""
    return text.replace(b'"l4s-', f'"{tag}-l4s-'.encode())


def test_a_wrong_expectation_exits_non_zero_with_a_diff(deployment: Deployment, tmp_path: Path) -> None:
    folder = SCENARIO_DIR / "log4shell-callback"
    events = tmp_path / "events.ndjson"
    events.write_bytes(renamed((folder / "events.ndjson").read_bytes(), "wrong"))
    lines = [orjson.loads(line) for line in renamed((folder / "expected.ndjson").read_bytes(), "wrong").splitlines()]
    lines[0]["severity"] = "high"
    lines.append({**lines[0], "event_ids": ["wrong-l4s-cron"], "severity": "low", "case": "java_shell_execution"})
    expected = tmp_path / "expected.ndjson"
    expected.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    result = replay(deployment, events, expected)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout.splitlines()
    assert any(line.startswith("  WRONG CASE  shell-spawned-by-java host=wrong-l4s-web-01") for line in out)
    assert "              got severity=critical case=java_shell_execution_known_bad" in out
    assert any(line.startswith("  MISSING") and "wrong-l4s-cron" in line for line in out)
    assert out[-1] == "expect: FAIL: 1 matched, 1 missing, 0 unexpected, 1 wrong case"


def test_record_from_another_cluster_then_replay_gives_the_same_alerts(
    deployment: Deployment, kafka_libs: Path, tmp_path: Path
) -> None:
    source = LocalKafka(kafka_libs)
    try:
        bootstrap = source.start()
        network, process = "prod-network", "prod-process"
        for topic in (network, process):
            create_topic(bootstrap, topic, 2)
        folder = SCENARIO_DIR / "log4shell-callback"
        producer = Producer({"bootstrap.servers": bootstrap})
        docs = renamed((folder / "events.ndjson").read_bytes(), "rec").splitlines()
        for line in docs:
            topic = network if b'"category":["network"]' in line else process
            producer.produce(topic, value=line, key=orjson.loads(line)["host"]["id"], headers=[("trace", b"t-1")])
        producer.produce(process, value=b"\xc3\x01\xff not utf-8", key=b"k")  # kept as base64, dead-lettered later
        assert producer.flush(30) == 0
        capture = tmp_path / "capture.ndjson"
        recorded = shellwatch(
            dict(deployment.env(), KAFKA_BOOTSTRAP_SERVERS=bootstrap),
            "record", "--topic", network, "--topic", process, "--out", capture,
        )  # fmt: skip
        assert recorded.returncode == 0, recorded.stderr
        assert f"record: {len(docs) + 1} records from {network}, {process}" in recorded.stderr
    finally:
        source.stop()
    lines = [orjson.loads(line) for line in capture.read_bytes().splitlines()]
    assert sum("value_b64" in line for line in lines) == 1
    assert all(line["headers"] == [["trace", "t-1"]] for line in lines if "value" in line)
    assert {line["topic"] for line in lines} == {network, process}
    expected = tmp_path / "expected.ndjson"
    expected.write_bytes(renamed((folder / "expected.ndjson").read_bytes(), "rec"))
    result = replay(deployment, capture, expected, "--speed", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  1 records had no event of an input (sent to the process topic)" in result.stdout
    assert "expect: PASS: 2 matched, 0 missing, 0 unexpected, 0 wrong case" in result.stdout
