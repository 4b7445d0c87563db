"""What the rule and list loaders share: reading TOML, typed field access that names file and field, MITRE
tables, the content digest and the shipped files' paths.

:class:`_Fields` records problems instead of raising, so a loader can raise one :class:`RuleError` listing every
problem of a file at once; unknown keys are errors (a typo must not silently disable a clause).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from shellwatch.errors import RuleError
from shellwatch.rules.model import MitreRef, ThreatEntry

__all__ = ["RuleError", "digest_of", "parse_toml", "shipped_rule_path"]

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


def _threats(fields: _Fields, file: str, problems: list[str]) -> tuple[ThreatEntry, ...]:
    """``[[threat]]`` tables of one tactic, one technique and at most one subtechnique each."""
    raw = fields.get("threat", list, [])
    threats: list[ThreatEntry] = []
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
            subtechniques = () if subtechnique is None else (subtechnique,)
            threats.append(ThreatEntry("MITRE ATT&CK", tactic, ((technique, subtechniques),)))
    return tuple(threats)


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
