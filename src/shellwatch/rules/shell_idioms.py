"""Known-bad command idioms: a small typed vocabulary, its matching, and its loading from a rule file.

An idiom (one ``[[idioms]]`` table) is exactly one of:

- ``substrings = [...]``: some command's text (program, arguments and redirections) contains one of them,
  ASCII case ignored (``/dev/tcp/``);
- ``command = {...}``: some command matches a :class:`CommandPattern`;
- ``pipeline = { from = {...}, to = {...} }``: in some pipeline a stage matching ``from`` is followed,
  at any later stage, by one matching ``to`` (``base64 -d | bash``).

A :class:`CommandPattern` holds when the program's basename matches one of ``programs`` (case-sensitive
globs, ``fnmatch`` syntax; ``programs_from`` adds a named list of the rule, such as ``shells``) and every
condition given holds:

- ``flags`` / ``long_flags``: some option word carries one of the short flag letters, alone or in a
  cluster (``nc -nve`` carries ``e``), or is one of the long flags (``--sh-exec``, ``--sh-exec=CMD``);
  with ``flags_before_operands`` only options before the first operand count (shells: ``bash -c 'x' -i``
  is not interactive);
- ``options`` (+ ``payload_contains``): one of these options is present (``-c CODE``, ``-cCODE``,
  ``--opt=CODE``) and the text from its value to the end of the command contains one of the payload
  strings, ASCII case ignored (the code may have been split into several words by ``Runtime.exec``);
- ``arg_prefixes`` / ``arg_contains``: some argument starts with / contains one of them, case ignored;
- ``arg_items``: one of the comma-separated items of some argument is one of them, case ignored (socat's
  ``exec:'bash -li',pty,stderr``);
- ``args``: some argument is exactly one of them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shellwatch.match.shell_commands import Analysis, Command
from shellwatch.rules.loader import _Fields

__all__ = ["CommandPattern", "Idiom", "IdiomHit", "glob_problem", "parse_idioms"]


def _never(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CommandPattern:
    programs: tuple[str, ...]
    flags: frozenset[str] = frozenset()
    long_flags: tuple[str, ...] = ()
    flags_before_operands: bool = False
    options: tuple[str, ...] = ()
    payload_contains: tuple[str, ...] = ()
    arg_prefixes: tuple[str, ...] = ()
    arg_contains: tuple[str, ...] = ()
    arg_items: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    # the programs' globs as one anchored alternation: fnmatchcase's semantics, one regex call per command
    _program: Callable[[str], object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alternation = "|".join(f"(?:{fnmatch.translate(pattern)})" for pattern in self.programs)
        object.__setattr__(self, "_program", re.compile(alternation).match if self.programs else _never)

    def matches(self, command: Command) -> bool:
        if not self._program(command.program):
            return False
        args = command.args
        if (self.flags or self.long_flags) and not self._has_flag(args):
            return False
        if self.options and not self._has_payload(args):
            return False
        lowered = [arg.lower() for arg in args]
        if self.arg_prefixes and not any(a.startswith(p) for a in lowered for p in self.arg_prefixes):
            return False
        if self.arg_contains and not any(p in a for a in lowered for p in self.arg_contains):
            return False
        if self.arg_items and not any(i.strip() in self.arg_items for a in lowered for i in a.split(",")):
            return False
        return not self.args or any(arg in self.args for arg in args)

    def _has_flag(self, args: tuple[str, ...]) -> bool:
        for arg in args:
            if arg == "--":
                return False
            if arg.startswith("--"):
                if arg.partition("=")[0] in self.long_flags:
                    return True
            elif arg.startswith("-") and len(arg) > 1:
                if not self.flags.isdisjoint(arg[1:]):
                    return True
            elif self.flags_before_operands:
                return False
        return False

    def _has_payload(self, args: tuple[str, ...]) -> bool:
        for index, arg in enumerate(args):
            for option in self.options:
                if arg == option:
                    value = args[index + 1 :]
                elif option.startswith("--") and arg.startswith(option + "="):
                    value = (arg[len(option) + 1 :], *args[index + 1 :])
                elif len(option) == 2 and arg.startswith(option):
                    value = (arg[2:], *args[index + 1 :])
                else:
                    continue
                payload = " ".join(value).lower()
                if not self.payload_contains or any(p in payload for p in self.payload_contains):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class IdiomHit:
    idiom: str
    description: str
    where: str  # the command (or pipeline) it holds on, rendered


@dataclass(frozen=True, slots=True)
class Idiom:
    name: str
    description: str
    substrings: tuple[str, ...] = ()  # lower-cased
    command: CommandPattern | None = None
    pipe_from: CommandPattern | None = None
    pipe_to: CommandPattern | None = None

    def find(self, analysis: Analysis) -> IdiomHit | None:
        """Where in ``analysis`` this idiom holds first, or ``None``."""
        if self.substrings:
            for command in analysis.commands:
                text = command.text.lower()
                if any(s in text for s in self.substrings):
                    return self._hit(command.render())
        if self.command is not None:
            for command in analysis.commands:
                if self.command.matches(command):
                    return self._hit(command.render())
        if self.pipe_from is not None and self.pipe_to is not None:
            source, sink = self.pipe_from, self.pipe_to
            for pipeline in analysis.pipelines:
                for index, stage in enumerate(pipeline):
                    if source.matches(stage) and any(sink.matches(later) for later in pipeline[index + 1 :]):
                        return self._hit(" | ".join(s.render() for s in pipeline))
        return None

    def _hit(self, where: str) -> IdiomHit:
        return IdiomHit(self.name, self.description, where)


def glob_problem(pattern: str) -> str | None:
    """Why a glob pattern is unusable, or ``None``."""
    if not pattern:
        return "expected a non-empty pattern"
    if not pattern.strip("*?"):
        return f"pattern {pattern!r} matches everything"
    opened = pattern.find("[")
    if opened >= 0 and pattern.find("]", opened + 2) < 0:
        return f"pattern {pattern!r} has an unclosed '['"
    return None


_PATTERN_KEYS = ("flags", "long_flags", "options", "payload_contains", "arg_prefixes", "arg_contains")


def _pattern(fields: _Fields, lists: Mapping[str, tuple[str, ...]]) -> CommandPattern:
    programs = list(fields.texts("programs", allow_empty=True)) if "programs" in fields.table else []
    fields.seen.add("programs")
    for index, program in enumerate(programs):
        problem = glob_problem(program) or ("a program is a basename: no '/'" if "/" in program else None)
        if problem:
            fields.problem(f"programs[{index}]", problem)
    source = fields.get("programs_from", str, required=False)
    if source is not None:
        if source in lists:
            programs.extend(lists[source])
        else:
            fields.problem("programs_from", f"expected one of {', '.join(sorted(lists))}, got {source!r}")
    if not programs and source is None:
        fields.problem("programs", "missing (give programs or programs_from)")
    got = {key: fields.texts(key) if key in fields.table else () for key in (*_PATTERN_KEYS, "arg_items", "args")}
    fields.seen.update(got)
    for index, flag in enumerate(got["flags"]):
        if len(flag) != 1 or not flag.isalnum():
            fields.problem(f"flags[{index}]", f"a short flag is one letter or digit, got {flag!r}")
    for index, flag in enumerate(got["long_flags"]):
        if not flag.startswith("--") or len(flag) < 3:
            fields.problem(f"long_flags[{index}]", f"a long flag starts with '--', got {flag!r}")
    for index, option in enumerate(got["options"]):
        if not (len(option) == 2 and option[0] == "-" and option[1] != "-") and not option.startswith("--"):
            fields.problem(f"options[{index}]", f"expected '-x' or '--name', got {option!r}")
    if got["payload_contains"] and not got["options"]:
        fields.problem("payload_contains", "needs options (the payload is an option's value)")
    before = fields.get("flags_before_operands", bool, False, required=False) or False
    fields.close()
    return CommandPattern(
        programs=tuple(dict.fromkeys(programs)),
        flags=frozenset(got["flags"]),
        long_flags=got["long_flags"],
        flags_before_operands=before,
        options=got["options"],
        payload_contains=tuple(p.lower() for p in got["payload_contains"]),
        arg_prefixes=tuple(p.lower() for p in got["arg_prefixes"]),
        arg_contains=tuple(p.lower() for p in got["arg_contains"]),
        arg_items=tuple(p.lower() for p in got["arg_items"]),
        args=got["args"],
    )


def _idiom(fields: _Fields, lists: Mapping[str, tuple[str, ...]]) -> Idiom | None:
    name, description = fields.text("name"), fields.text("description")
    kinds = [key for key in ("substrings", "command", "pipeline") if key in fields.table]
    if len(kinds) != 1:
        fields.problem("substrings", f"give exactly one of substrings, command, pipeline (got {kinds or 'none'})")
    substrings = fields.texts("substrings") if "substrings" in fields.table else ()
    fields.seen.add("substrings")
    command = _pattern(fields.sub("command"), lists) if "command" in fields.table else None
    pipe_from = pipe_to = None
    if "pipeline" in fields.table:
        pipeline = fields.sub("pipeline")
        pipe_from, pipe_to = _pattern(pipeline.sub("from"), lists), _pattern(pipeline.sub("to"), lists)
        pipeline.close()
    fields.seen.update(("command", "pipeline"))
    fields.close()
    if len(kinds) != 1:
        return None
    return Idiom(name, description, tuple(s.lower() for s in substrings), command, pipe_from, pipe_to)


def parse_idioms(fields: _Fields, lists: Mapping[str, tuple[str, ...]]) -> tuple[Idiom, ...]:
    """The ``idioms`` array of tables of ``fields``; ``lists``: the rule's named program lists."""
    raw: list[Any] = fields.get("idioms", list, []) or []
    idioms: list[Idiom] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        key = f"idioms[{index}]"
        if not isinstance(item, dict):
            fields.problem(key, "expected a table")
            continue
        idiom = _idiom(_Fields(fields.file, item, f"{fields.prefix}{key}.", fields.problems), lists)
        if idiom is not None and idiom.name in names:
            fields.problem(f"{key}.name", f"duplicate idiom name {idiom.name!r}")
        elif idiom is not None:
            names.add(idiom.name)
            idioms.append(idiom)
    if not raw and "idioms" in fields.table:
        fields.problem("idioms", "must list at least one idiom")
    return tuple(idioms)
