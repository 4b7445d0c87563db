"""``shellwatch detect`` against Elastic's Python ``eql`` engine on the same NDJSON file.

``detect`` runs as the real command (a subprocess, start-up included). eql runs in this process on the
rule as adapted by the differential test (tests/unit/core/test_differential_eql.py: the adaptations and the
case-sensitivity switch live there, one copy), fed every line decoded with orjson in file order (time order).
Both sides include reading and decoding the file. The sequence rule's alerts must be the same set:
eql's (connection, exec) pairs are turned into alert ids as shellwatch computes them.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eql
import orjson

from bench.workload import SEQUENCE_RULE, alert_ids
from shellwatch.ecs.timestamps import parse_timestamp_ms
from tests.unit.core.test_differential_eql import _eql_case_sensitive, _parsed_query


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_detect(ndjson: Path) -> tuple[float, float, set[str], int]:
    """Wall and CPU seconds, the sequence rule's alert ids, and the number of alerts of any rule."""
    started, cpu = time.perf_counter(), _children_cpu_s()
    done = subprocess.run(
        [sys.executable, "-m", "shellwatch", "detect", str(ndjson)], capture_output=True, check=True, timeout=3600
    )
    seconds, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
    alerts = [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]
    sequence = {a["event"]["id"] for a in alerts if a["rule"]["id"] == SEQUENCE_RULE}
    return seconds, cpu, sequence, len(alerts)


def _eql_events(ndjson: Path) -> Iterator[Any]:
    with ndjson.open("rb") as lines:
        for line in lines:
            doc = orjson.loads(line)
            kind = doc["event"]["category"][0]
            yield eql.Event(kind, parse_timestamp_ms(doc["@timestamp"]), doc)


def run_eql(ndjson: Path) -> tuple[float, float, set[str]]:
    """Wall and CPU seconds, and the sequence alert ids for eql's matches."""
    outputs: list[Any] = []
    started, cpu = time.perf_counter(), time.process_time()
    with _eql_case_sensitive():
        engine = eql.PythonEngine({"time_unit": 1000})  # Event.time in epoch ms: maxspan=5s is 5000 ticks
        engine.add_output_hook(outputs.append)
        engine.add_query(_parsed_query())
        engine.stream_events(_eql_events(ndjson))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    ids = set()
    for output in outputs:
        _connection, execution = output.events
        ids.add(alert_ids(execution.data["host"]["id"], execution.data["event"]["id"])[0])
    return seconds, cpu, ids


def compare(ndjson: Path, events: int, expected_sequence: set[str]) -> dict[str, Any]:
    """Speed-up by CPU time (the machine is shared: wall time also counts other people's work) and by wall."""
    detect_s, detect_cpu, detect_ids, detect_all = run_detect(ndjson)
    eql_s, eql_cpu, eql_ids = run_eql(ndjson)
    return {
        "events": events,
        "detect_s": round(detect_s, 2),
        "detect_cpu_s": round(detect_cpu, 2),
        "detect_events_per_s": round(events / detect_s),
        "detect_events_per_cpu_s": round(events / detect_cpu),
        "detect_alerts_all_rules": detect_all,
        "eql_s": round(eql_s, 2),
        "eql_cpu_s": round(eql_cpu, 2),
        "eql_events_per_s": round(events / eql_s),
        "eql_events_per_cpu_s": round(events / eql_cpu),
        "speedup": round(eql_cpu / detect_cpu, 1),
        "speedup_wall": round(eql_s / detect_s, 1),
        "sequence_alerts": {"detect": len(detect_ids), "eql": len(eql_ids), "expected": len(expected_sequence)},
        "same_alerts": detect_ids == eql_ids == expected_sequence,
    }
