"""The "Shell process created by Java application" rule (shell-spawned-by-java): typed model and loader.

:func:`load_shell_rule` reads the rule file (metadata, named lists, wrappers, Confluence markers, known-bad
idioms) and the allowlist file, and raises :class:`~shellwatch.rules.loader.RuleError` listing every problem
of both files at once, each naming its file and field. Unknown keys are errors; so are empty lists,
duplicates, wildcards in exact-name lists, paths where a basename is expected and unusable globs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from shellwatch.match.comparisons import WildcardSet, compile_wildcards, literal_runs
from shellwatch.match.shell_commands import ShellSyntax, Wrapper
from shellwatch.rules.loader import RuleError, _Fields, _threats, digest_of, parse_toml, shipped_rule_path
from shellwatch.rules.model import RISK_SCORES, RuleMeta
from shellwatch.rules.shell_idioms import Idiom, glob_problem, parse_idioms

__all__ = [
    "ALLOWLIST_FILE",
    "SHELL_RULE_FILE",
    "AllowEntry",
    "ConfluenceMarkers",
    "ShellRule",
    "load_shell_rule",
]

SHELL_RULE_FILE = "shell_spawned_by_java.toml"
ALLOWLIST_FILE = "java_allowlist.toml"
PROGRAM_LISTS = ("java_parent_names", "shells", "http_utilities", "recon_commands", "unusual_commands")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    name: str
    reason: str
    parent_args: tuple[str, ...]  # case-sensitive fnmatch globs, each tried against every parent arg
    host_ids: tuple[str, ...] = ()
    host_names: tuple[str, ...] = ()

    def match(self, parent_args: Sequence[str], host_id: str | None, host_name: str | None) -> str | None:
        """The parent argument this entry silences on, or ``None``."""
        if (self.host_ids or self.host_names) and host_id not in self.host_ids and host_name not in self.host_names:
            return None
        for arg in parent_args:
            if any(fnmatchcase(arg, pattern) for pattern in self.parent_args):
                return arg
        return None


@dataclass(frozen=True, slots=True)
class ConfluenceMarkers:
    env_var_prefixes: tuple[str, ...]
    parent_paths: tuple[str, ...]
    parent_markers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShellRule:
    meta: RuleMeta
    digest: str  # sha256 of the rule and allowlist content
    java_parent_names: tuple[str, ...]
    java_executables: WildcardSet
    shells: tuple[str, ...]
    http_utilities: tuple[str, ...]
    recon_commands: tuple[str, ...]
    unusual_commands: tuple[str, ...]
    syntax: ShellSyntax
    idioms: tuple[Idiom, ...]
    confluence: ConfluenceMarkers
    allowlist: tuple[AllowEntry, ...]

    def qualifying_programs(self) -> frozenset[str]:
        """Programs that make a Java child worth a signal by themselves."""
        return frozenset((*self.shells, *self.http_utilities, *self.recon_commands, *self.unusual_commands))

    def prefilter_patterns(self) -> tuple[str, ...]:
        """Wildcard patterns one of which every exec this rule can classify contains (its Java parent's name or
        executable), for :class:`shellwatch.core.byte_screen.ByteScreen`; derived from the loaded lists."""
        return (*self.java_parent_names, *self.java_executables.patterns)


def _names(fields: _Fields, key: str) -> tuple[str, ...]:
    names = fields.texts(key)
    seen: set[str] = set()
    for index, name in enumerate(names):
        if any(ch in name for ch in "*?[") or "/" in name or name != name.strip() or not name.strip():
            fields.problem(f"{key}[{index}]", f"expected an exact program name (no path, wildcard or blank): {name!r}")
        if name in seen:
            fields.problem(f"{key}[{index}]", f"{name!r} is listed twice")
        seen.add(name)
    return names


def _java_executables(fields: _Fields) -> WildcardSet:
    patterns = fields.texts("java_executables")
    for index, pattern in enumerate(patterns):
        if not any(run.strip() for run in literal_runs(pattern)):
            fields.problem(
                f"java_executables[{index}]", f"pattern {pattern!r} has no literal text: it matches anything"
            )
    return compile_wildcards(patterns)


def _wrappers(fields: _Fields) -> dict[str, Wrapper]:
    wrappers: dict[str, Wrapper] = {}
    for name in list(fields.table):
        table = fields.sub(name)
        if "/" in name or not name.strip():
            fields.problem(name, "expected a program name")
        options = {key: table.texts(key) if key in table.table else () for key in ("value_options", "split_options")}
        table.seen.update(options)
        for key, values in options.items():
            for index, option in enumerate(values):
                if not option.startswith("-") or option in ("-", "--") or (len(option) > 2 and option[1] != "-"):
                    table.problem(f"{key}[{index}]", f"expected '-x' or '--name', got {option!r}")
        for index, option in enumerate(options["split_options"]):
            if option not in options["value_options"]:
                table.problem(f"split_options[{index}]", f"{option!r} must also be in value_options")
        operands = table.get("operands", int, 0, required=False) or 0
        if operands < 0:
            table.problem("operands", f"must be 0 or more, got {operands}")
        assignments = table.get("assignments", bool, False, required=False) or False
        table.close()
        wrappers[name] = Wrapper(
            frozenset(options["value_options"]), frozenset(options["split_options"]), assignments, operands
        )
    return wrappers


def _confluence(fields: _Fields) -> ConfluenceMarkers:
    markers = ConfluenceMarkers(
        fields.texts("env_var_prefixes"), fields.texts("parent_paths"), fields.texts("parent_markers")
    )
    fields.close()
    return markers


def _meta(fields: _Fields, file: str, problems: list[str]) -> RuleMeta:
    # Each case carries its own severity; the rule's own is the floor (the lowest case).
    return RuleMeta(
        id=fields.text("id"),
        name=fields.text("name"),
        version=fields.text("version"),
        severity="low",
        risk_score=RISK_SCORES["low"],
        reference=fields.text("reference"),
        threat=_threats(fields, file, problems),
    )


def _allowlist(path: Path, data: dict[str, Any], problems: list[str]) -> tuple[AllowEntry, ...]:
    top = _Fields(str(path), data, "", problems)
    raw: list[Any] = top.get("allow", list, [], required=False) or []
    top.close()
    entries: list[AllowEntry] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            top.problem(f"allow[{index}]", "expected a table")
            continue
        fields = _Fields(str(path), item, f"allow[{index}].", problems)
        name, reason = fields.text("name"), fields.text("reason")
        patterns = fields.texts("parent_args")
        for position, pattern in enumerate(patterns):
            if problem := glob_problem(pattern):
                fields.problem(f"parent_args[{position}]", problem)
        hosts = {key: fields.texts(key) if key in item else () for key in ("host_ids", "host_names")}
        fields.seen.update(hosts)
        if name and name in {entry.name for entry in entries}:
            fields.problem("name", f"duplicate entry name {name!r}")
        fields.close()
        entries.append(AllowEntry(name, reason, patterns, hosts["host_ids"], hosts["host_names"]))
    return tuple(entries)


def _rule(
    path: Path, data: dict[str, Any], problems: list[str], allowlist: tuple[AllowEntry, ...], digest: str
) -> ShellRule:
    file = str(path)
    top = _Fields(file, data, "", problems)
    meta = _meta(top, file, problems)
    lists = top.sub("lists")
    named = {key: _names(lists, key) for key in PROGRAM_LISTS}
    executables = _java_executables(lists)
    lists.close()
    wrappers = _wrappers(top.sub("wrappers"))
    idioms = parse_idioms(top, {key: named[key] for key in PROGRAM_LISTS if key != "java_parent_names"})
    confluence = _confluence(top.sub("confluence"))
    top.close()
    return ShellRule(
        meta=meta,
        digest=digest,
        java_parent_names=named["java_parent_names"],
        java_executables=executables,
        shells=named["shells"],
        http_utilities=named["http_utilities"],
        recon_commands=named["recon_commands"],
        unusual_commands=named["unusual_commands"],
        syntax=ShellSyntax(frozenset(named["shells"]), wrappers),
        idioms=idioms,
        confluence=confluence,
        allowlist=allowlist,
    )


def _read(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        return parse_toml(path)
    except RuleError as exc:
        problems.extend(exc.problems)
        return None


def load_shell_rule(rule_path: Path | None = None, allowlist_path: Path | None = None) -> ShellRule:
    """Load and validate the rule and its allowlist (the shipped files by default)."""
    rule_path = rule_path or shipped_rule_path(SHELL_RULE_FILE)
    allowlist_path = allowlist_path or shipped_rule_path(ALLOWLIST_FILE)
    problems: list[str] = []
    rule_data, allow_data = _read(rule_path, problems), _read(allowlist_path, problems)
    allowlist = _allowlist(allowlist_path, allow_data, problems) if allow_data is not None else ()
    digest = digest_of({"rule": rule_data, "allowlist": allow_data})
    rule = _rule(rule_path, rule_data, problems, allowlist, digest) if rule_data is not None else None
    if problems or rule is None:
        raise RuleError(problems)
    return rule
