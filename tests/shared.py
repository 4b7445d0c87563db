"""Helpers shared by the real-broker tests: committed offsets, offline expectations, a dict state store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.ecs.timestamps import format_rfc3339_ms
from shellwatch.rules.eql_rule import EqlRule, load_rules_setting
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule

RULE = load_reverse_shell_rule()
SHELL_RULE = load_shell_rule()
VENDORED = Path(__file__).parent / "rules" / "elastic"
# Linux sequence rules of Elastic's detection-rules the worker runs (SHELLWATCH_RULES) beside the bundled ones
JAVA_RULE_FILES = (
    "execution_shell_via_java_revshell_linux.toml",  # Potential Reverse Shell via Java (5a3d5447)
    "execution_suspicious_java_netcon_childproc.toml",  # Potential JAVA/JNDI Exploitation Attempt (c3f5e1d8)
    "execution_shell_via_lolbin_interpreter_linux.toml",  # Reverse Shell via Suspicious Child Process (76e4d92b)
)


# a rule whose second stage reads file events: the worker reads a third input topic for it
CUPS_FILE_RULE = "execution_cupsd_foomatic_rip_file_creation.toml"  # File Creation by Cups or Foomatic-rip Child


def operator_rules(directory: Path, extra: Sequence[str] = ()) -> tuple[EqlRule, ...]:
    """The vendored Java rules (and ``extra`` vendored files) copied into ``directory`` (a ``SHELLWATCH_RULES``
    value), loaded as the worker does."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (*JAVA_RULE_FILES, *extra):
        (directory / name).write_text((VENDORED / name).read_text())
    return load_rules_setting([directory])


def cups_sequence(
    host: str, t_ms: int, *, file_path: str = "/tmp/.x.sh", writer: str = "curl", gap_ms: int = 1500
) -> list[dict[str, Any]]:
    """A shell that foomatic-rip started, and a file one of its children writes ``gap_ms`` later (Elastic Defend's
    file event, for the file topic): :data:`CUPS_FILE_RULE`'s sequence, unless ``writer`` and ``file_path`` are its
    exclusions or the gap exceeds its maxspan (10 s)."""
    base: dict[str, Any] = {"host": {"id": host, "os": {"type": "linux"}}}
    shell = {**base, "@timestamp": format_rfc3339_ms(t_ms)}
    shell["event"] = {"id": f"{host}-{t_ms}-sh", "category": ["process"], "type": ["start"], "action": "exec"}
    shell["process"] = {"name": "sh", "entity_id": f"{host}-{t_ms}-sh", "parent": {"name": "foomatic-rip"}}
    created = {**base, "@timestamp": format_rfc3339_ms(t_ms + gap_ms)}
    created["event"] = {"id": f"{host}-{t_ms}-file", "category": ["file"], "type": ["creation"], "action": "creation"}
    created["process"] = {"name": writer, "entity_id": f"{host}-{t_ms}-w", "parent": {"entity_id": f"{host}-{t_ms}-sh"}}
    created["file"] = {"path": file_path, "name": file_path.rsplit("/", 1)[-1]}
    return [shell, created]


def committed_and_end(
    bootstrap: str, group: str, topics: list[str], partitions: int
) -> tuple[dict[Any, int], dict[Any, int]]:
    """The group's committed offsets and the end offsets of every partition of ``topics``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(tps, timeout=10)}
        ends = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    finally:
        consumer.close()
    return committed, ends


def offline_alerts(docs: list[dict[str, Any]], rules: Sequence[EqlRule] = ()) -> list[dict[str, Any]]:
    """The alerts ``shellwatch detect`` raises for the same documents (both bundled rules, and ``rules``: the
    operator's, as ``SHELLWATCH_RULES`` gives them), in order."""
    pipeline = Pipeline(RULE, PipelineConfig(), SHELL_RULE, rules=rules)
    return [a for doc in docs for a in pipeline.process(orjson.dumps(doc), 0).alerts] + pipeline.flush(0)


def offline_alert_ids(docs: list[dict[str, Any]]) -> set[str]:
    """What ``shellwatch detect`` raises for the same documents (both rules)."""
    return {a["event"]["id"] for a in offline_alerts(docs)}


class DictStore:
    """The worker runtime's state store, in memory."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self.data.items()))
