"""``shellwatch demo``: the whole pipeline on a bundled sample, on a real broker, in under a minute.

Starts a local Apache Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names one), creates fresh
topics, starts a worker, produces the sample (one attack amid benign traffic from many hosts) moved
in time so its newest event is the moment it is produced, prints the alerts as they arrive, and stops
everything.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from shellwatch.core.pipeline import Pipeline
from shellwatch.ecs.timestamps import format_rfc3339_ms, parse_timestamp_ms
from shellwatch.formats.alert_codec import encode_alert
from shellwatch.kafka.admin import create_topic
from shellwatch.kafka.clock import WallClockMs
from shellwatch.kafka.documents import AlertReader, produce_documents
from shellwatch.kafka.security import KafkaSecurity
from shellwatch.local.kafka import LocalKafka, fetch_jars, jars_dir
from shellwatch.local.process import WorkerProcess
from shellwatch.rules.model import ReverseShellRule
from shellwatch.rules.shell_rule import ShellRule
from shellwatch.samples.build import sample_documents
from shellwatch.settings import SECURITY_VARIABLES, Settings
from shellwatch.tools.terminal import printable

__all__ = ["alert_summary", "restamp", "run_demo"]

PARTITIONS = 4
TIMEOUT_S = 60.0


def _expected_alerts(
    rule: ReverseShellRule, shell_rule: ShellRule, settings: Settings, docs: list[dict[str, Any]]
) -> int:
    """How many alerts the sample holds, by running the same core offline."""
    pipeline = Pipeline(rule, settings.pipeline, shell_rule)
    count = sum(len(pipeline.process(orjson.dumps(doc), 0).alerts) for doc in docs)
    return count + len(pipeline.flush(0))


def _shifted(value: Any, offset_ms: int) -> Any:
    """A timestamp value ``offset_ms`` later, in its own form: epoch milliseconds stay a number (or a string
    of digits); ISO-8601 is written as RFC 3339 UTC with milliseconds, the form the sample uses."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value + offset_ms
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return str(int(value) + offset_ms)
    return format_rfc3339_ms(parse_timestamp_ms(value) + offset_ms)


def restamp(docs: Sequence[Mapping[str, Any]], now_ms: int) -> list[dict[str, Any]]:
    """``docs`` moved in time by one common offset so that the newest ``@timestamp`` is ``now_ms``.

    Every gap between events is kept exactly, so ordering, pairing and the alerts are those of the
    bundled sample; only ``@timestamp`` and ``event.created`` change (a document without ``@timestamp``
    is copied unchanged). The bundled sample is dated 2024: without this, an alert's
    ``detection.latency_ms`` would read as years. ``docs`` are not modified.
    """
    stamps = [parse_timestamp_ms(doc["@timestamp"]) for doc in docs if "@timestamp" in doc]
    offset_ms = now_ms - max(stamps) if stamps else 0
    out: list[dict[str, Any]] = []
    for doc in docs:
        moved = dict(doc)
        if "@timestamp" in doc:
            moved["@timestamp"] = _shifted(doc["@timestamp"], offset_ms)
            event = doc.get("event")
            if isinstance(event, Mapping) and "created" in event:
                moved["event"] = {**event, "created": _shifted(event["created"], offset_ms)}
        out.append(moved)
    return out


def alert_summary(alert: Mapping[str, Any]) -> str:
    """The one line the demo prints above each alert: rule, severity, host, the connection-to-shell gap
    (sequence alerts only; a shell alert has no gap), the shell's command line and the alert id's prefix."""
    detection = alert["detection"]
    events = detection["events"]
    shell = events[-1].get("process", {}) if events else {}
    command = " ".join(str(a) for a in shell.get("args", [])) if isinstance(shell, dict) else ""
    gap_ms = detection["explanation"].get("gap_ms")
    gap = "" if gap_ms is None else f" gap={gap_ms}ms"
    return printable(
        f"ALERT {alert['rule']['name']} [{detection['severity']}] host={alert['host'].get('name')}"
        f"{gap} shell={command!r} id={alert['event']['id'][:16]}"
    )


def run_demo(
    settings: Settings,
    rule: ReverseShellRule,
    shell_rule: ShellRule,
    environ: Mapping[str, str],
    out: IO[str],
    *,
    clock_ms: WallClockMs,
) -> int:
    """Run the demo; ``clock_ms`` (epoch milliseconds) dates the sample when it is produced."""
    docs = sample_documents()
    expected = _expected_alerts(rule, shell_rule, settings, docs)
    broker: LocalKafka | None = None
    bootstrap = settings.kafka.bootstrap_servers
    security = settings.kafka.security  # the named cluster's; a local broker is plain
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="shellwatch-demo-"))
    try:
        if bootstrap is None:
            out.write("starting a local Apache Kafka broker...\n")
            out.flush()
            broker = LocalKafka(fetch_jars(jars_dir()))
            bootstrap = broker.start()
            security = KafkaSecurity()
            environ = {k: v for k, v in environ.items() if k not in SECURITY_VARIABLES}
        app_id = f"shellwatch-demo-{uuid.uuid4().hex[:8]}"
        topics = {"network": f"{app_id}-network", "process": f"{app_id}-process"}
        for name in topics.values():
            create_topic(bootstrap, name, PARTITIONS, security=security)
        env = {
            **environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SHELLWATCH_APP_ID": app_id,
            "SHELLWATCH_NETWORK_TOPIC": topics["network"],
            "SHELLWATCH_PROCESS_TOPIC": topics["process"],
            "SHELLWATCH_ALERTS_TOPIC": f"{app_id}-alerts",
            "SHELLWATCH_DEAD_LETTER_TOPIC": f"{app_id}-dead-letters",
            "SHELLWATCH_WEB_ENABLED": "false",
            "SHELLWATCH_DATA_DIR": str(workdir / "data"),
        }
        with WorkerProcess(env, workdir / "worker.log", loglevel="WARNING") as worker:
            reader = AlertReader(bootstrap, f"{app_id}-alerts", security=security)
            try:
                sent = produce_documents(
                    bootstrap,
                    restamp(docs, clock_ms()),
                    network_topic=topics["network"],
                    process_topic=topics["process"],
                    security=security,
                )
                out.write(
                    f"broker {bootstrap}: produced {sent} sample events from {len(docs)} documents, "
                    f"expecting {expected} alert(s)\n"
                )
                out.flush()
                alerts = reader.read(until=expected, timeout_s=TIMEOUT_S, settle_s=2.0)
            finally:
                reader.close()
            for alert in alerts:
                out.write(alert_summary(alert) + "\n")
                out.write(encode_alert(alert).decode() + "\n")
            if not worker.running():
                out.write(f"the worker stopped early:\n{worker.log_tail()}\n")
                return 1
        ids = {a["event"]["id"] for a in alerts}
        out.write(f"{len(ids)} of {expected} expected alert(s) in {time.monotonic() - started:.1f}s\n")
        return 0 if len(ids) == expected else 1
    finally:
        if broker is not None:
            broker.stop()
