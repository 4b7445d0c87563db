"""EQL rules in Elastic's detection-rules layout (TOML), loaded into typed, compiled :class:`EqlRule` objects.

A file holds ``[metadata]`` (not read) and ``[rule]`` with ``rule_id``, ``name``, ``severity``, ``risk_score``,
``language = "eql"``, ``query`` and ``[[rule.threat]]``; optional ``version`` (detection-rules keeps it in a
lock file), ``uuid`` (Elastic's id when ``rule_id`` is ours), ``references`` (URLs), ``event_category_override``
and ``timestamp_override``. Other keys of Elastic's layout (``description``, ``index``, ``tags`` ...) are allowed
and ignored. ``@timestamp`` orders events even under ``timestamp_override`` (a stream has no ingest time).

:func:`load_eql_rules` takes files and directories (searched for ``*.toml``), skips and counts files that are
not EQL rules, and reports every problem at once: a query error with the file's line and column and the
refused construct's name, a missing or mistyped key, and two files with one ``rule_id`` (naming both).
Exception lists among those files (:mod:`shellwatch.rules.exceptions`) are attached to the rules they name
(:attr:`EqlRule.exceptions`); a list naming a rule that did not load is a problem too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, cast

from shellwatch.eql.compile import CATEGORY_FIELD, CompiledQuery, compile_query
from shellwatch.eql.parse import parse_query
from shellwatch.errors import EqlError, RuleError, RuleFileError
from shellwatch.rules.exceptions import ExceptionList, is_exception_list, parse_exception_list
from shellwatch.rules.loader import digest_of
from shellwatch.rules.model import SEVERITIES, MitreRef, Severity, ThreatEntry

__all__ = [
    "EqlRule",
    "LoadedRules",
    "RuleProblem",
    "ThreatEntry",
    "load_eql_rule",
    "load_eql_rules",
    "load_rule_file",
    "load_rules_setting",
    "parse_eql_rule",
]

_QUERY_START = re.compile(r"^[ \t]*query[ \t]*=[ \t]*(\"\"\"|'''|\"|')(\r?\n)?", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class EqlRule:
    file: str
    rule_id: str
    uuid: str | None
    name: str
    version: str | None
    severity: Severity
    risk_score: int
    threat: tuple[ThreatEntry, ...]
    references: tuple[str, ...]
    query: str
    compiled: CompiledQuery
    event_category_override: str | None
    timestamp_override: str | None
    digest: str
    exceptions: tuple[ExceptionList, ...] = ()  # the lists attached to it, in file order


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """A file that did not load; ``construct`` names a refused EQL construct (``None`` for other problems)."""

    file: str
    message: str
    construct: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.construct}: {self.message}" if self.construct else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class LoadedRules:
    rules: tuple[EqlRule, ...]
    problems: tuple[RuleProblem, ...]
    skipped: int  # TOML files that are neither EQL rules nor exception lists
    exception_lists: tuple[ExceptionList, ...] = ()


def _fail(file: str, message: str) -> NoReturn:
    raise RuleFileError(file, message)


def _text(table: Mapping[str, Any], key: str, file: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        wrong = "missing" if value is None else "expected a non-empty string"
        _fail(file, f"rule.{key}: {wrong}")
    return value


def _ref(raw: Any, where: str, file: str) -> MitreRef:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in ("id", "name", "reference")):
        _fail(file, f"{where}: expected a table with id, name and reference")
    return MitreRef(raw["id"], raw["name"], raw["reference"])


def _threat(raw: Any, file: str) -> tuple[ThreatEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        _fail(file, "rule.threat: expected an array of tables")
    entries: list[ThreatEntry] = []
    for index, item in enumerate(raw):
        where = f"rule.threat[{index}]"
        if not isinstance(item, dict):
            _fail(file, f"{where}: expected a table")
        techniques = []
        for t_index, technique in enumerate(item.get("technique", [])):
            subs = technique.get("subtechnique", []) if isinstance(technique, dict) else []
            subrefs = tuple(_ref(s, f"{where}.technique[{t_index}].subtechnique", file) for s in subs)
            techniques.append((_ref(technique, f"{where}.technique[{t_index}]", file), subrefs))
        framework = item.get("framework", "MITRE ATT&CK")
        tactic = _ref(item.get("tactic"), f"{where}.tactic", file)
        entries.append(ThreatEntry(str(framework), tactic, tuple(techniques)))
    return tuple(entries)


def _references(raw: Any, file: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(r, str) and r.strip() for r in raw):
        _fail(file, "rule.references: expected an array of non-empty strings")
    return tuple(raw)


def _query_origin(source: str) -> tuple[int, int]:
    """The file line (1-based) and column where the ``query`` string's text begins."""
    found = _QUERY_START.search(source)
    if found is None:
        return 1, 1
    line = source.count("\n", 0, found.end()) + 1
    if found.group(2):
        return line, 1
    return line, found.end() - (source.rfind("\n", 0, found.end()) + 1) + 1


def _compiled(query: str, category_field: str, file: str, source: str) -> CompiledQuery:
    try:
        return compile_query(parse_query(query), category_field=category_field)
    except EqlError as exc:
        first_line, first_column = _query_origin(source)
        line = first_line + exc.line - 1
        column = exc.column + (first_column - 1 if exc.line == 1 else 0)
        raise RuleFileError(file, exc.message, exc.construct, line, column) from None


def load_eql_rule(path: Path) -> EqlRule | RuleProblem | None:
    """Load one file: the rule, the problem that stops it, or ``None`` when it is not an EQL rule."""
    loaded = load_rule_file(path)
    return None if isinstance(loaded, ExceptionList) else loaded


def load_rule_file(path: Path) -> EqlRule | ExceptionList | RuleProblem | None:
    """Load one file: a rule, an exception list, the problem that stops it, or ``None`` for other TOML."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return RuleProblem(str(path), f"cannot read: {exc}")
    try:
        return _parse_any(source, str(path))
    except RuleFileError as exc:
        return RuleProblem(exc.file, exc.message, exc.construct, exc.line, exc.column)


def parse_eql_rule(source: str, file: str) -> EqlRule | RuleProblem | None:
    """:func:`load_eql_rule` for text already read (``file`` names it in problems)."""
    try:
        parsed = _parse_any(source, file)
    except RuleFileError as exc:
        return RuleProblem(exc.file, exc.message, exc.construct, exc.line, exc.column)
    return None if isinstance(parsed, ExceptionList) else parsed


def _parse_any(source: str, file: str) -> EqlRule | ExceptionList | None:
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        _fail(file, f"invalid TOML: {exc}")
    if is_exception_list(data):
        return parse_exception_list(data, file)
    return _parse(data, source, file)


def _parse(data: Mapping[str, Any], source: str, file: str) -> EqlRule | None:
    rule = data.get("rule")
    if not isinstance(rule, dict) or rule.get("language") != "eql":
        return None
    severity = _text(rule, "severity", file)
    if severity not in SEVERITIES:
        _fail(file, f"rule.severity: expected one of {', '.join(SEVERITIES)}, got {severity!r}")
    risk = rule.get("risk_score")
    if not isinstance(risk, int) or isinstance(risk, bool) or not 0 <= risk <= 100:
        _fail(file, f"rule.risk_score: expected a whole number within 0..100, got {risk!r}")
    version = rule.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int | str)):
        _fail(file, f"rule.version: expected a number or a string, got {version!r}")
    override = _text(rule, "event_category_override", file, required=False)
    query = cast(str, _text(rule, "query", file))
    return EqlRule(
        file=file,
        rule_id=cast(str, _text(rule, "rule_id", file)),
        uuid=_text(rule, "uuid", file, required=False),
        name=cast(str, _text(rule, "name", file)),
        version=None if version is None else str(version),
        severity=severity,
        risk_score=risk,
        threat=_threat(rule.get("threat"), file),
        references=_references(rule.get("references"), file),
        query=query,
        compiled=_compiled(query, override or CATEGORY_FIELD, file, source),
        event_category_override=override,
        timestamp_override=_text(rule, "timestamp_override", file, required=False),
        digest=digest_of(data),
    )


def _files(paths: Iterable[Path]) -> list[Path]:
    """The files given, and the ``*.toml`` files under the directories given, except under hidden names: a
    Kubernetes ConfigMap volume keeps a second copy of every file in a hidden ``..<timestamp>`` directory, and
    editors and version control keep theirs in dot-directories."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        found.extend(p for p in sorted(path.rglob("*.toml")) if not _hidden(p.relative_to(path)))
    return found


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def load_eql_rules(paths: Iterable[Path]) -> LoadedRules:
    """Every EQL rule under ``paths`` (files, or directories searched for ``*.toml``), with its exception lists
    attached, and every problem."""
    rules: list[EqlRule] = []
    lists: list[ExceptionList] = []
    problems: list[RuleProblem] = []
    skipped = 0
    first_file: dict[str, str] = {}
    for path in _files(paths):
        loaded = load_rule_file(path)
        if isinstance(loaded, RuleProblem):
            problems.append(loaded)
            continue
        if isinstance(loaded, ExceptionList):
            lists.append(loaded)
            continue
        if loaded is None:
            skipped += 1
            continue
        if loaded.rule_id in first_file:
            message = f"rule_id {loaded.rule_id!r} is also defined in {first_file[loaded.rule_id]}"
            problems.append(RuleProblem(loaded.file, message, "duplicate rule_id"))
            continue
        first_file[loaded.rule_id] = loaded.file
        rules.append(loaded)
    attached: dict[str, list[ExceptionList]] = {}
    for exception_list in lists:
        for rule_id in exception_list.rule_ids:
            if rule_id not in first_file:
                name = exception_list.name
                message = f"exception list {name!r} is attached to rule_id {rule_id!r}, which no loaded rule has"
                problems.append(RuleProblem(exception_list.file, message))
            attached.setdefault(rule_id, []).append(exception_list)
    rules = [replace(r, exceptions=tuple(attached[r.rule_id])) if r.rule_id in attached else r for r in rules]
    return LoadedRules(tuple(rules), tuple(problems), skipped, tuple(lists))


def load_rules_setting(paths: Sequence[Path]) -> tuple[EqlRule, ...]:
    """The operator's rules of ``SHELLWATCH_RULES`` (files or directories; none: none), with their exception
    lists; raises :class:`RuleError` listing every problem, or when the paths hold no EQL rule."""
    if not paths:
        return ()
    loaded = load_eql_rules(paths)
    if loaded.problems:
        raise RuleError([f"SHELLWATCH_RULES: {problem}" for problem in loaded.problems])
    if not loaded.rules:
        raise RuleError([f"SHELLWATCH_RULES: no EQL rule file under {', '.join(str(p) for p in paths)}"])
    return loaded.rules
