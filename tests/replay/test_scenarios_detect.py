"""Every scenario through ``shellwatch detect --expect`` (the replay into the broker is in tests/integration)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.replay.build_scenarios import SCENARIO_DIR, SCENARIOS, rendered


def detect(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shellwatch", "detect", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_library_holds_exactly_the_built_scenarios() -> None:
    assert sorted(p.name for p in SCENARIO_DIR.iterdir() if p.is_dir()) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_events_are_the_builder_output(name: str) -> None:
    description, events = rendered(name)
    assert (SCENARIO_DIR / name / "description.txt").read_bytes() == description
    assert (SCENARIO_DIR / name / "events.ndjson").read_bytes() == events
    assert len(description.splitlines()) == 1


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_passes_through_detect(name: str) -> None:
    folder = SCENARIO_DIR / name
    expected = [line for line in (folder / "expected.ndjson").read_bytes().splitlines() if line.strip()]
    result = detect(folder / "events.ndjson", "--expect", folder / "expected.ndjson")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"expect: PASS: {len(expected)} matched, 0 missing, 0 unexpected, 0 wrong case"
    )


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
