"""``shellwatch demo``: the whole pipeline on a bundled sample, on a real broker, in under a minute.

Starts a local Apache Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names one), creates fresh
topics, starts a worker, produces the sample (one attack amid benign traffic from many hosts), prints
the alerts as they arrive, and stops everything.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from shellwatch.core.pipeline import Pipeline
from shellwatch.formats.alert_codec import encode_alert
from shellwatch.kafka.documents import AlertReader, produce_documents
from shellwatch.kafka.security import KafkaSecurity
from shellwatch.local.kafka import LocalKafka, create_topic, fetch_jars, jars_dir
from shellwatch.local.process import WorkerProcess
from shellwatch.rules.model import ReverseShellRule
from shellwatch.rules.shell_rule import ShellRule
from shellwatch.samples.build import sample_documents
from shellwatch.settings import SECURITY_VARIABLES, Settings
from shellwatch.tools.terminal import printable

__all__ = ["run_demo"]

PARTITIONS = 4
TIMEOUT_S = 60.0


def _expected_alerts(
    rule: ReverseShellRule, shell_rule: ShellRule, settings: Settings, docs: list[dict[str, Any]]
) -> int:
    """How many alerts the sample holds, by running the same core offline."""
    pipeline = Pipeline(rule, settings.pipeline, shell_rule)
    count = sum(len(pipeline.process(orjson.dumps(doc), 0).alerts) for doc in docs)
    return count + len(pipeline.flush(0))


def _summary(alert: Mapping[str, Any]) -> str:
    detection = alert["detection"]
    events = detection["events"]
    shell = events[-1].get("process", {}) if events else {}
    command = " ".join(str(a) for a in shell.get("args", [])) if isinstance(shell, dict) else ""
    return printable(
        f"ALERT {alert['rule']['name']} [{detection['severity']}] host={alert['host'].get('name')} "
        f"gap={detection['explanation'].get('gap_ms')}ms shell={command!r} id={alert['event']['id'][:16]}"
    )


def run_demo(
    settings: Settings, rule: ReverseShellRule, shell_rule: ShellRule, environ: Mapping[str, str], out: IO[str]
) -> int:
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
                    docs,
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
                out.write(_summary(alert) + "\n")
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
