"""Elastic Defend-shaped ECS documents for samples, tests and benchmarks.

The documents carry the fields a real endpoint event carries (agent, ecs, event, host, process,
user, network), not just those the rules read, so decoding and pre-filtering meet realistic input.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shellwatch.ecs.timestamps import format_rfc3339_ms

__all__ = ["JAVA", "connection", "entity_id", "execution", "file_event", "iso"]

JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"


def iso(epoch_ms: int) -> str:
    return format_rfc3339_ms(epoch_ms)


def entity_id(host_id: str, pid: int, start: str = "0") -> str:
    return hashlib.sha256(f"{host_id}|{pid}|{start}".encode()).hexdigest()[:32]


def _host(host_id: str, os_type: str = "linux") -> dict[str, Any]:
    return {
        "id": host_id,
        "name": f"srv-{host_id[:8]}",
        "hostname": f"srv-{host_id[:8]}",
        "architecture": "x86_64",
        "os": {"type": os_type, "family": "debian", "name": "Debian GNU/Linux", "kernel": "6.1.0-28-amd64"},
    }


def _common(ts_ms: int, *, event_id: str, dataset: str, category: str, action: str, kind: str) -> dict[str, Any]:
    return {
        "@timestamp": iso(ts_ms),
        "agent": {"type": "endpoint", "version": "8.15.2", "id": "0b5c0a0e-3c9a-4c8e-9d7e-6a1c2f0d4e11"},
        "ecs": {"version": "8.11.0"},
        "data_stream": {"type": "logs", "dataset": dataset, "namespace": "default"},
        "event": {
            "id": event_id,
            "kind": "event",
            "category": [category],
            "type": [kind],
            "action": action,
            "module": "endpoint",
            "dataset": dataset,
            "created": iso(ts_ms),
            "sequence": 1,
        },
    }


def connection(
    *,
    ts_ms: int,
    host_id: str,
    pid: int,
    dest_ip: str | None,
    event_id: str,
    executable: str = JAVA,
    action: str = "connection_attempted",
    dest_port: int = 4444,
    os_type: str = "linux",
) -> dict[str, Any]:
    doc = _common(
        ts_ms, event_id=event_id, dataset="endpoint.events.network", category="network", action=action, kind="start"
    )
    doc["host"] = _host(host_id, os_type)
    doc["process"] = {
        "pid": pid,
        "entity_id": entity_id(host_id, pid),
        "executable": executable,
        "name": executable.rsplit("/", 1)[-1],
    }
    doc["source"] = {"ip": "10.20.0.15", "port": 51512}
    if dest_ip is not None:
        doc["destination"] = {"ip": dest_ip, "port": dest_port}
    doc["network"] = {
        "transport": "tcp",
        "type": "ipv6" if dest_ip and ":" in dest_ip else "ipv4",
        "direction": "egress" if action == "connection_attempted" else "ingress",
    }
    doc["user"] = {"id": "998", "name": "app", "Ext": {"real": {"id": "998", "name": "app"}}}
    return doc


def execution(
    *,
    ts_ms: int,
    host_id: str,
    pid: int,
    parent_pid: int,
    event_id: str,
    name: str = "bash",
    args: list[str] | None = None,
    parent_executable: str = JAVA,
    parent_args: list[str] | None = None,
    action: str = "exec",
    os_type: str = "linux",
) -> dict[str, Any]:
    args = args if args is not None else [f"/bin/{name}", "-c", "id"]
    parent_args = parent_args if parent_args is not None else [parent_executable, "-jar", "/opt/app/app.jar"]
    doc = _common(
        ts_ms, event_id=event_id, dataset="endpoint.events.process", category="process", action=action, kind="start"
    )
    doc["host"] = _host(host_id, os_type)
    doc["process"] = {
        "pid": pid,
        "entity_id": entity_id(host_id, pid, str(ts_ms)),
        "executable": args[0] if args and args[0].startswith("/") else f"/usr/bin/{name}",
        "name": name,
        "args": args,
        "args_count": len(args),
        "command_line": " ".join(args),
        "working_directory": "/opt/app",
        "parent": {
            "pid": parent_pid,
            "entity_id": entity_id(host_id, parent_pid),
            "executable": parent_executable,
            "name": parent_executable.rsplit("/", 1)[-1],
            "args": parent_args,
            "args_count": len(parent_args),
            "command_line": " ".join(parent_args),
        },
    }
    doc["user"] = {"id": "998", "name": "app"}
    return doc


def file_event(
    *,
    ts_ms: int,
    host_id: str,
    pid: int,
    parent_entity_id: str,
    event_id: str,
    path: str,
    executable: str,
    action: str = "creation",
    os_type: str = "linux",
) -> dict[str, Any]:
    """A file event as Elastic Defend writes it (``logs-endpoint.events.file``): process ``pid`` (``executable``),
    a child of the process ``parent_entity_id`` names, created (``action``) the file at ``path``."""
    doc = _common(ts_ms, event_id=event_id, dataset="endpoint.events.file", category="file", action=action, kind=action)
    doc["host"] = _host(host_id, os_type)
    name = path.rsplit("/", 1)[-1]
    doc["file"] = {"path": path, "name": name, "directory": path.rsplit("/", 1)[0] or "/"}
    if "." in name.lstrip("."):
        doc["file"]["extension"] = name.rsplit(".", 1)[-1]
    doc["process"] = {
        "pid": pid,
        "entity_id": entity_id(host_id, pid),
        "executable": executable,
        "name": executable.rsplit("/", 1)[-1],
        "parent": {"entity_id": parent_entity_id},
    }
    doc["user"] = {"id": "7", "name": "lp"}
    return doc
