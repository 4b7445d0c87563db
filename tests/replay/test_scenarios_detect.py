"""Every scenario through ``shellwatch detect --expect`` (the replay into the broker is in tests/integration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.replay.build_scenarios import SCENARIO_DIR, SCENARIOS, VENDORED, rendered


def detect(*args: str | Path, rules: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``rules``: a scenario's rules directory, given as ``SHELLWATCH_RULES`` (as a user runs Elastic's rules)."""
    command = [sys.executable, "-m", "shellwatch", "detect", *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "SHELLWATCH_RULES"}
    if rules is not None:
        env["SHELLWATCH_RULES"] = str(rules)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)


def scenario_rules(folder: Path) -> Path | None:
    """The scenario's Elastic rule files (its ``rules/`` directory), if it has any."""
    return folder / "rules" if (folder / "rules").is_dir() else None


def test_the_library_holds_exactly_the_built_scenarios() -> None:
    assert sorted(p.name for p in SCENARIO_DIR.iterdir() if p.is_dir()) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_events_are_the_builder_output(name: str) -> None:
    description, events = rendered(name)
    assert (SCENARIO_DIR / name / "description.txt").read_bytes() == description
    assert (SCENARIO_DIR / name / "events.ndjson").read_bytes() == events
    assert len(description.splitlines()) == 1
    rules = scenario_rules(SCENARIO_DIR / name)
    committed = sorted(p.name for p in rules.iterdir()) if rules is not None else []
    assert committed == sorted(SCENARIOS[name].rules)
    for rule in committed:
        assert (SCENARIO_DIR / name / "rules" / rule).read_bytes() == (VENDORED / rule).read_bytes(), "verbatim"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_passes_through_detect(name: str) -> None:
    folder = SCENARIO_DIR / name
    expected = [line for line in (folder / "expected.ndjson").read_bytes().splitlines() if line.strip()]
    rules = scenario_rules(folder)
    result = detect(folder / "events.ndjson", "--expect", folder / "expected.ndjson", rules=rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"expect: PASS: {len(expected)} matched, 0 missing, 0 unexpected, 0 wrong case"
    )
    if rules is not None:  # the scenario's rule is what raises some of its expected alerts
        without = detect(folder / "events.ndjson", "--expect", folder / "expected.ndjson")
        assert without.returncode == 1 and " 0 missing" not in without.stdout.splitlines()[-1]


def test_a_wrong_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    folder = SCENARIO_DIR / "log4shell-callback"
    lines = [orjson.loads(line) for line in (folder / "expected.ndjson").read_bytes().splitlines()]
    lines[0]["severity"] = "low"  # the reverse shell is critical, not low
    lines[1]["event_ids"] = ["l4s-conn-ldap", "l4s-exec-revshell"]  # the newer HTTP connection pairs, not LDAP
    wrong = tmp_path / "expected.ndjson"
    wrong.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    result = detect(folder / "events.ndjson", "--expect", wrong)
    assert result.returncode == 1
    out = result.stdout.splitlines()
    assert any(line.startswith("  WRONG CASE  shell-spawned-by-java host=l4s-web-01") for line in out)
    assert any(line.startswith("  MISSING") and "l4s-conn-ldap" in line for line in out)
    assert any(line.startswith("  UNEXPECTED") and "l4s-conn-http" in line for line in out)
    assert out[-1] == "expect: FAIL: 0 matched, 1 missing, 1 unexpected, 1 wrong case"


def test_expectations_output_reproduces_the_hand_written_file() -> None:
    folder = SCENARIO_DIR / "tomcat-webshell-recon"
    result = detect(folder / "events.ndjson", "--expectations")
    assert result.returncode == 0, result.stderr
    produced = {orjson.dumps(orjson.loads(line)) for line in result.stdout.splitlines()}
    written = {line for line in (folder / "expected.ndjson").read_bytes().splitlines() if line}
    stripped = set()
    for line in written:
        doc = orjson.loads(line)
        doc.pop("comment", None)
        stripped.add(orjson.dumps(doc))
    assert produced == stripped
