"""The severity-case classifier of "Shell process created by Java application" (shell-spawned-by-java).

Pure: a loaded :class:`~shellwatch.rules.shell_rule.ShellRule` and a :class:`~shellwatch.ecs.events.ProcessEvent` in,
a :class:`Classification` or ``None`` out. An event is classified when all of these hold:

- the host is Linux: ``host.os.type`` is ``linux`` or absent (any other value never matches);
- it is an exec: some ``event.action`` contains ``exec`` (case ignored; ``fork``/``end`` never match);
- the parent is Java: ``process.parent.name`` (or the basename of ``process.parent.executable``) is in
  ``java_parent_names``, or ``process.parent.executable`` matches ``java_executables``;
- the child is a shell, an HTTP, recon or unusual utility (by ``process.name``, the basename of
  ``process.executable`` or ``argv[0]``, or what a wrapper such as ``env`` or ``timeout`` hands over to), or
  any of its commands carries a known-bad idiom.

The commands looked at are the exec itself and, through wrappers and shells' ``-c`` strings, everything it runs
(:mod:`shellwatch.match.shell_commands`); every command counts and the first case of :data:`CASES` that holds wins.
The allowlist silences only :data:`ALLOWLISTABLE` cases, and only parents whose executable is in a Java home.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from shellwatch.ecs.events import ProcessEvent
from shellwatch.match.shell_commands import Analysis, analyze_args, analyze_command_line, basename
from shellwatch.rules.model import RISK_SCORES, Severity
from shellwatch.rules.shell_rule import ShellRule

__all__ = [
    "ALLOWLISTABLE",
    "CASES",
    "CASE_SEVERITY",
    "Classification",
    "ShellCase",
    "Verdict",
    "classify",
    "evaluate",
    "explain_silence",
]

ShellCase = Literal[
    "java_shell_execution_known_bad",
    "confluence_server_spawned_shell_potential_rce",
    "java_shell_execution_unusual",
    "java_shell_execution_suspicious",
    "java_shell_execution",
]
CASES: tuple[ShellCase, ...] = (  # precedence: the first that holds wins
    "java_shell_execution_known_bad",
    "confluence_server_spawned_shell_potential_rce",
    "java_shell_execution_unusual",
    "java_shell_execution_suspicious",
    "java_shell_execution",
)
CASE_SEVERITY: Mapping[ShellCase, Severity] = {
    "java_shell_execution_known_bad": "critical",
    "confluence_server_spawned_shell_potential_rce": "high",
    "java_shell_execution_unusual": "high",
    "java_shell_execution_suspicious": "medium",
    "java_shell_execution": "low",
}
ALLOWLISTABLE: frozenset[ShellCase] = frozenset({"java_shell_execution", "java_shell_execution_suspicious"})
OS_TYPE = "linux"
EXEC_ACTION = "exec"


@dataclass(frozen=True, slots=True)
class Classification:
    case: ShellCase
    severity: Severity
    risk_score: int
    explanation: tuple[str, ...]  # why: the Java parent, the child, what made the case
    commands: tuple[str, ...]  # every command found, the exec itself first


@dataclass(frozen=True, slots=True)
class Verdict:
    classification: Classification
    allowlisted_by: str | None  # the allowlist entry that silences it, with its reason


def _applies(event: ProcessEvent) -> bool:
    linux = not event.os_types or OS_TYPE in event.os_types
    return linux and any(EXEC_ACTION in action.lower() for action in event.actions)


def _java_parent(rule: ShellRule, event: ProcessEvent) -> tuple[str | None, bool]:
    """``(why the parent is Java or None, whether its executable is in a Java home)``."""
    home = rule.java_executables.first_match(event.parent_executables)
    if home is not None:
        return f"parent executable {home[0]!r} matches java_executables {home[1]!r}", True
    for name in event.parent_names:
        if name in rule.java_parent_names:
            return f"parent name {name!r} is in java_parent_names", False
    for executable in event.parent_executables:
        if basename(executable) in rule.java_parent_names:
            return f"parent executable {executable!r} is named like java_parent_names", False
    return None, False


def _analysis(rule: ShellRule, event: ProcessEvent) -> Analysis:
    aliases = tuple(dict.fromkeys(name for name in (*map(basename, event.executables), *event.names) if name))
    if event.args:
        return analyze_args(event.args, rule.syntax, also_as=aliases)
    if event.command_lines:
        return analyze_command_line(event.command_lines[0], rule.syntax)
    return analyze_args(aliases[:1], rule.syntax, also_as=aliases[1:])


def _child(rule: ShellRule, event: ProcessEvent, analysis: Analysis) -> str | None:
    lists = (
        ("shells", rule.shells),
        ("http_utilities", rule.http_utilities),
        ("unusual_commands", rule.unusual_commands),
        ("recon_commands", rule.recon_commands),
    )
    names = (*event.names, *map(basename, event.executables), *(command.program for command in analysis.chain))
    for name in names:
        for list_name, programs in lists:
            if name in programs:
                return f"child {name!r} is in {list_name}"
    return None


def _confluence(rule: ShellRule, event: ProcessEvent) -> str | None:
    markers = rule.confluence
    for entry in event.env_vars:
        name = entry.split("=", 1)[0]
        for prefix in markers.env_var_prefixes:
            if name.startswith(prefix):
                return f"Confluence: environment variable {name!r} starts with {prefix!r}"
    parent_fields = (
        ("process.parent.executable", event.parent_executables),
        ("process.parent.args", event.parent_args),
        ("process.parent.command_line", event.parent_command_lines),
    )
    for field, values in parent_fields:
        for value in values:
            for marker in (*markers.parent_paths, *markers.parent_markers):
                if marker in value:
                    return f"Confluence: {field} {value!r} contains {marker!r}"
    return None


def _listed(analysis: Analysis, programs: Iterable[str], list_name: str) -> list[str]:
    wanted = frozenset(programs)
    return [f"{c.program!r} is in {list_name}: {c.render()}" for c in analysis.commands if c.program in wanted]


def _case(rule: ShellRule, event: ProcessEvent, analysis: Analysis) -> tuple[ShellCase, list[str]] | None:
    hits = [hit for idiom in rule.idioms if (hit := idiom.find(analysis)) is not None]
    child = _child(rule, event, analysis)
    if child is None and not hits:
        return None
    reasons = [child or "child runs a known-bad idiom"]
    if hits:
        return "java_shell_execution_known_bad", reasons + [
            f"known-bad idiom {hit.idiom!r} ({hit.description}): {hit.where}" for hit in hits
        ]
    if (confluence := _confluence(rule, event)) is not None:
        return "confluence_server_spawned_shell_potential_rce", [*reasons, confluence]
    if unusual := _listed(analysis, rule.unusual_commands, "unusual_commands"):
        return "java_shell_execution_unusual", reasons + unusual
    if recon := _listed(analysis, rule.recon_commands, "recon_commands"):
        return "java_shell_execution_suspicious", reasons + recon
    return "java_shell_execution", [*reasons, "no known-bad idiom, Confluence marker, unusual or recon command"]


def evaluate(rule: ShellRule, event: ProcessEvent) -> Verdict | None:
    """The classification with the allowlist entry that would silence it, or ``None`` if the rule does not apply."""
    if not _applies(event):
        return None
    java, in_java_home = _java_parent(rule, event)
    if java is None:
        return None
    analysis = _analysis(rule, event)
    found = _case(rule, event, analysis)
    if found is None:
        return None
    case, reasons = found
    if analysis.truncated:
        reasons.append("command analysis stopped at its depth or size limit")
    severity = CASE_SEVERITY[case]
    commands = tuple(dict.fromkeys(command.render() for command in analysis.commands))
    classification = Classification(case, severity, RISK_SCORES[severity], (java, *reasons), commands)
    allowlisted_by = None
    if case in ALLOWLISTABLE and in_java_home:
        for entry in rule.allowlist:
            arg = entry.match(event.parent_args, event.host_id, event.host_name)
            if arg is not None:
                allowlisted_by = f"{entry.name} (parent argument {arg!r}): {entry.reason}"
                break
    return Verdict(classification, allowlisted_by)


def classify(rule: ShellRule, event: ProcessEvent) -> Classification | None:
    """The case this exec raises, or ``None`` (not applicable, or silenced by the allowlist)."""
    verdict = evaluate(rule, event)
    if verdict is None or verdict.allowlisted_by is not None:
        return None
    return verdict.classification


def explain_silence(rule: ShellRule, event: ProcessEvent) -> str | None:
    """Which allowlist entry silences this exec (for debugging), or ``None`` when none does."""
    verdict = evaluate(rule, event)
    return verdict.allowlisted_by if verdict is not None else None
