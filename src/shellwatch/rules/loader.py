"""Loading rule files (TOML) into typed models, with every error naming its file and field.

Unknown keys are errors (a typo must not silently disable a clause). :func:`load_reverse_shell_rule`
raises :class:`RuleError` listing every problem found in the file at once.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

from shellwatch.errors import RuleError
from shellwatch.match.comparisons import IpRanges, compile_wildcards
from shellwatch.rules.model import (
    SEVERITIES,
    MitreRef,
    NetworkStage,
    ProcessStage,
    ReverseShellRule,
    RuleMeta,
    Severity,
    Threat,
)

__all__ = ["REVERSE_SHELL_RULE_FILE", "RuleError", "load_reverse_shell_rule", "shipped_rule_path"]

REVERSE_SHELL_RULE_FILE = "potential_reverse_shell_via_java.toml"
T = TypeVar("T")


def shipped_rule_path(name: str) -> Path:
    return Path(str(resources.files("shellwatch.rules").joinpath(name)))


class _Fields:
    """Typed access to one table of a rule file; records problems instead of raising."""

    def __init__(self, file: str, table: Mapping[str, Any], prefix: str, problems: list[str]) -> None:
        self.file, self.table, self.prefix, self.problems = file, table, prefix, problems
        self.seen: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file}: {self._name(key)}: {message}")

    def get(self, key: str, kind: type[T], default: T | None = None, *, required: bool = True) -> T | None:
        self.seen.add(key)
        if key not in self.table:
            if required:
                self.problem(key, "missing")
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(key, f"expected {kind.__name__}, got {type(value).__name__}")
            return default
        return value

    def text(self, key: str) -> str:
        value = self.get(key, str, "")
        if value is not None and not value.strip():
            self.problem(key, "must not be empty")
        return value or ""

    def texts(self, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = self.get(key, list, [])
        items: list[str] = []
        for index, item in enumerate(value or []):
            if not isinstance(item, str) or not item:
                self.problem(f"{key}[{index}]", "expected a non-empty string")
            else:
                items.append(item)
        if not items and not allow_empty and value is not None:
            self.problem(key, "must list at least one value")
        return tuple(items)

    def sub(self, key: str) -> _Fields:
        value = self.get(key, dict, {})
        return _Fields(self.file, value or {}, f"{self._name(key)}.", self.problems)

    def converted(self, key: str, values: tuple[str, ...], convert: Callable[[str], T]) -> list[T]:
        out: list[T] = []
        for index, item in enumerate(values):
            try:
                out.append(convert(item))
            except ValueError as exc:
                self.problem(f"{key}[{index}]", str(exc))
        return out

    def close(self) -> None:
        for key in sorted(set(self.table) - self.seen):
            self.problem(key, "unknown field")


def _mitre(fields: _Fields, key: str, *, required: bool = True) -> MitreRef | None:
    if not required and key not in fields.table:
        fields.seen.add(key)
        return None
    table = fields.sub(key)
    ref = MitreRef(table.text("id"), table.text("name"), table.text("reference"))
    table.close()
    return ref


def _threats(fields: _Fields, file: str, problems: list[str]) -> tuple[Threat, ...]:
    raw = fields.get("threat", list, [])
    threats: list[Threat] = []
    for index, item in enumerate(raw or []):
        if not isinstance(item, dict):
            fields.problem(f"threat[{index}]", "expected a table")
            continue
        table = _Fields(file, item, f"threat[{index}].", problems)
        tactic = _mitre(table, "tactic")
        technique = _mitre(table, "technique")
        subtechnique = _mitre(table, "subtechnique", required=False)
        table.close()
        if tactic is not None and technique is not None:
            threats.append(Threat(tactic, technique, subtechnique))
    return tuple(threats)


def _meta(fields: _Fields, file: str, problems: list[str]) -> RuleMeta:
    severity = fields.text("severity")
    if severity and severity not in SEVERITIES:
        fields.problem("severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    risk = fields.get("risk_score", int, 0) or 0
    if not 0 <= risk <= 100:
        fields.problem("risk_score", f"must be within 0..100, got {risk}")
    return RuleMeta(
        id=fields.text("id"),
        name=fields.text("name"),
        version=fields.text("version"),
        severity=cast(Severity, severity),
        risk_score=risk,
        reference=fields.text("reference"),
        threat=_threats(fields, file, problems),
    )


def _network_stage(fields: _Fields) -> NetworkStage:
    excluded_ips = fields.texts("excluded_ips", allow_empty=True)
    cidrs = fields.texts("excluded_cidrs", allow_empty=True)
    ranges = IpRanges((), ())
    try:
        ranges = IpRanges.parse(cidrs)
    except ValueError:
        fields.converted("excluded_cidrs", cidrs, lambda spec: IpRanges.parse([spec]))
    stage = NetworkStage(
        os_type=fields.text("os_type"),
        actions=fields.texts("actions"),
        executables=compile_wildcards(fields.texts("executables")),
        excluded_ips=tuple(fields.converted("excluded_ips", excluded_ips, NetworkStage.parse_excluded_ip)),
        excluded_cidrs=ranges,
    )
    fields.close()
    return stage


def _process_stage(fields: _Fields) -> ProcessStage:
    stage = ProcessStage(
        os_type=fields.text("os_type"),
        action=fields.text("action"),
        parent_executables=compile_wildcards(fields.texts("parent_executables")),
        parent_args=compile_wildcards(fields.texts("parent_args")),
        names=fields.texts("names"),
        excluded_parent_args=fields.texts("excluded_parent_args", allow_empty=True),
    )
    fields.close()
    return stage


def parse_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise RuleError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError([f"{path}: invalid TOML: {exc}"]) from None


def digest_of(data: Mapping[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_reverse_shell_rule(path: Path | None = None) -> ReverseShellRule:
    path = path or shipped_rule_path(REVERSE_SHELL_RULE_FILE)
    data = parse_toml(path)
    problems: list[str] = []
    top = _Fields(str(path), data, "", problems)
    meta = _meta(top, str(path), problems)
    maxspan_ms = top.get("maxspan_ms", int, 0) or 0
    if maxspan_ms <= 0:
        top.problem("maxspan_ms", f"must be a positive number of milliseconds, got {maxspan_ms}")
    query = top.get("query", str, "", required=False) or ""
    network = _network_stage(top.sub("network"))
    process = _process_stage(top.sub("process"))
    top.close()
    if problems:
        raise RuleError(problems)
    return ReverseShellRule(meta, maxspan_ms, query, network, process, digest_of(data))
