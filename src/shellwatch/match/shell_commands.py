"""What an exec runs: the program itself, what its wrappers hand over to, and every command its shells run.

Pure parsing, no classification. :func:`analyze_args` takes an exec's argv (ECS ``process.args``),
:func:`analyze_command_line` a command line when the argv is missing. Both return an :class:`Analysis`:

- ``commands``: every command found, the exec itself first, programs reduced to their basename
  (``/usr/bin/curl`` is ``curl``);
- wrappers (:class:`Wrapper`: ``env VAR=x``, ``timeout 5``, ``sudo -u x``, ``busybox sh``…) are looked
  through: the wrapped command is recorded too, one level deeper;
- a shell's command string (the operand after ``-c``, also inside ``-lc``/``-ec``/``-xc``, or fish's
  ``--command``) is lexed (:mod:`shellwatch.match.shell_lexer`) and each of its commands analysed in turn, so nested
  shells and ``$(...)`` substitutions are followed, up to ``max_depth`` levels and ``max_commands`` commands;
  without ``-c`` the first operand is the script path (kept, not read);
- ``pipelines``: each pipeline of two or more stages, as the command each stage finally runs (wrappers looked
  through), for idioms such as "base64 -d piped to a shell";
- ``chain``: the exec and what its wrappers hand over to, shells excluded.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shellwatch.match.shell_lexer import parse_script

__all__ = [
    "Analysis",
    "Command",
    "ShellInput",
    "ShellSyntax",
    "Wrapper",
    "analyze_args",
    "analyze_command_line",
    "basename",
    "shell_input",
]

_SHELL_VALUE_OPTIONS = frozenset({"--rcfile", "--init-file", "--init-command"})  # long options taking a value
_COMMAND_OPTIONS = frozenset({"--command"})  # fish: --command=STRING / --command STRING


@dataclass(frozen=True, slots=True)
class Wrapper:
    """How a wrapper program's own options are skipped to reach the command it runs.

    ``value_options`` take a value (``-u root``, ``-uroot``, ``--user=root``); ``split_options`` take a
    value that is itself split into the command (``env -S 'bash -i'``); ``assignments`` skips ``NAME=value``
    words (``env``, ``sudo``); ``operands`` skips that many operands before the command (``timeout 5``).
    """

    value_options: frozenset[str] = frozenset()
    split_options: frozenset[str] = frozenset()
    assignments: bool = False
    operands: int = 0

    def unwrap(self, args: Sequence[str]) -> tuple[str, ...]:
        """The wrapped argv (empty when there is none)."""
        i = 0
        split: tuple[str, ...] = ()
        while i < len(args):
            arg = args[i]
            if arg == "--":
                i += 1
                break
            if self.assignments and "=" in arg and not arg.startswith("-") and arg.split("=", 1)[0].isidentifier():
                i += 1
                continue
            if arg == "-":  # env -: same as -i
                i += 1
                continue
            if not arg.startswith("-"):
                break
            name, value, used = self._option(arg, args, i)
            if value is not None and name in self.split_options:
                split = tuple(value.split())
            i += used
        rest = tuple(args[i:])
        if not split:
            rest = rest[self.operands :]
        return split + rest

    def _option(self, arg: str, args: Sequence[str], i: int) -> tuple[str, str | None, int]:
        """``(option name, its value or None, words used)`` for the option word ``args[i]``."""
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name not in self.value_options:
                return name, None, 1
            return (name, value, 1) if eq else (name, following, 2)
        for position, letter in enumerate(arg[1:], start=2):
            name = f"-{letter}"
            if name in self.value_options:
                attached = arg[position:]
                return (name, attached, 1) if attached else (name, following, 2)
        return arg, None, 1


@dataclass(frozen=True, slots=True)
class ShellSyntax:
    """What counts as a shell and as a wrapper, and how deep to follow them."""

    shells: frozenset[str]
    wrappers: Mapping[str, Wrapper] = field(default_factory=dict)
    max_depth: int = 8
    max_commands: int = 256
    max_script_chars: int = 65536  # characters of command strings lexed per analysis, nested ones included


@dataclass(frozen=True, slots=True)
class Command:
    program: str  # basename of argv[0]
    args: tuple[str, ...]  # argv[1:]
    redirects: tuple[str, ...] = ()
    depth: int = 0  # 0: the exec itself; +1 per wrapper, shell or substitution looked into
    via: str = ""  # how it was reached: "", "env", "bash -c", "$(...)"

    @property
    def text(self) -> str:
        """The command as one string, for substring idioms (arguments unquoted)."""
        return " ".join((self.program, *self.args, *self.redirects))

    def render(self) -> str:
        """The command quoted as a shell would need it, for explanations."""
        return " ".join((shlex.join((self.program, *self.args)), *self.redirects))


@dataclass(frozen=True, slots=True)
class ShellInput:
    command: str | None  # the -c command string
    script: str | None  # else the script path


@dataclass(frozen=True, slots=True)
class Analysis:
    commands: tuple[Command, ...]
    pipelines: tuple[tuple[Command, ...], ...]
    chain: tuple[Command, ...]
    scripts: tuple[str, ...]  # the command strings shells were given
    script_paths: tuple[str, ...]
    truncated: bool  # max_depth, max_commands or max_script_chars was reached


def basename(path: str) -> str:
    """The last component of a path (``/usr/bin/curl`` -> ``curl``)."""
    return path.rstrip("/").rsplit("/", 1)[-1] if path.strip("/") else path


def shell_input(argv: Sequence[str]) -> ShellInput:
    """The command string (after ``-c``, also clustered: ``-lc``) or else the script path of a shell argv."""
    i, has_c, stdin = 1, False, False
    while i < len(argv):
        arg = argv[i]
        if arg in ("--", "-"):
            i += 1
            break
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            if name in _COMMAND_OPTIONS:
                return ShellInput(value if eq else (argv[i + 1] if i + 1 < len(argv) else None), None)
            i += 2 if name in _SHELL_VALUE_OPTIONS and not eq else 1
            continue
        if len(arg) > 1 and arg[0] in "-+":
            letters = arg[1:]
            has_c = has_c or (arg[0] == "-" and "c" in letters)
            stdin = stdin or (arg[0] == "-" and "s" in letters)
            i += 1 + sum(letter in "oO" for letter in letters)  # -o NAME / -O SHOPT take a value
            continue
        break
    operand = argv[i] if i < len(argv) else None
    if has_c:
        return ShellInput(operand, None)
    return ShellInput(None, None if stdin else operand)


class _Walker:
    def __init__(self, syntax: ShellSyntax) -> None:
        self.syntax = syntax
        self.commands: list[Command] = []
        self.pipelines: list[tuple[Command, ...]] = []
        self.chain: list[Command] = []
        self.scripts: list[str] = []
        self.paths: list[str] = []
        self.truncated = False
        self.chars_left = syntax.max_script_chars

    def argv(
        self, argv: Sequence[str], redirects: Sequence[str], depth: int, via: str, *, chain: bool = False
    ) -> Command | None:
        """Record ``argv`` and what it runs; return the command it finally runs (wrappers looked through)."""
        if not argv:
            return None
        if len(self.commands) >= self.syntax.max_commands:
            self.truncated = True
            return None
        command = Command(basename(argv[0]), tuple(argv[1:]), tuple(redirects), depth, via)
        self.commands.append(command)
        if chain:
            self.chain.append(command)
        wrapper = self.syntax.wrappers.get(command.program)
        inner = wrapper.unwrap(command.args) if wrapper is not None else ()
        if inner:
            if depth >= self.syntax.max_depth:
                self.truncated = True
                return command
            return self.argv(inner, (), depth + 1, command.program, chain=chain) or command
        if command.program in self.syntax.shells:
            source = shell_input((command.program, *command.args))
            if source.command is not None:
                self.scripts.append(source.command)
                self.script(source.command, depth + 1, f"{command.program} -c")
            elif source.script is not None:
                self.paths.append(source.script)
        return command

    def script(self, text: str, depth: int, via: str, *, chain: bool = False) -> None:
        """Record the commands of a command string; ``chain``: its first command is the exec itself."""
        if depth > self.syntax.max_depth:
            self.truncated = True
            return
        if len(text) > self.chars_left:
            self.truncated = True
            text = text[: self.chars_left]
        self.chars_left -= len(text)
        parsed = parse_script(text)
        for index, pipeline in enumerate(parsed.pipelines):
            stages = [
                self.argv(raw.words, raw.redirects, depth, via, chain=chain and index == 0 and position == 0)
                for position, raw in enumerate(pipeline)
            ]
            ran = tuple(stage for stage in stages if stage is not None)
            if len(ran) >= 2:
                self.pipelines.append(ran)
        for substitution in parsed.substitutions:
            self.script(substitution, depth + 1, "$(...)")

    def result(self) -> Analysis:
        return Analysis(
            tuple(self.commands),
            tuple(self.pipelines),
            tuple(self.chain),
            tuple(self.scripts),
            tuple(self.paths),
            self.truncated,
        )


def analyze_args(args: Sequence[str], syntax: ShellSyntax, *, also_as: Sequence[str] = ()) -> Analysis:
    """Analyse an exec's argv. ``also_as``: other names the exec goes by (its executable's basename,
    ``process.name``); when one differs from ``argv[0]``'s basename, the same arguments are analysed under it too
    (``argv[0]`` is chosen by the caller and may lie)."""
    walker = _Walker(syntax)
    programs = [basename(args[0])] if args else []
    for name in also_as:
        if name and basename(name) not in programs:
            programs.append(basename(name))
    for program in programs:
        walker.argv((program, *args[1:]), (), 0, "", chain=True)
    return walker.result()


def _joined_shell_argv(command_line: str, shells: frozenset[str]) -> list[str] | None:
    """``[shell, options..., -c, rest of the line]`` for a shell command line whose args were joined with spaces."""
    words = list(re.finditer(r"\S+", command_line))
    if not words or basename(words[0].group(0)) not in shells:
        return None
    for word in words[1:]:
        text = word.group(0)
        if text[0] not in "-+":
            return None
        if text[0] == "-" and not text.startswith("--") and "c" in text:
            rest = command_line[word.end() :].strip()
            if not rest:
                return None
            return [*command_line[: word.end()].split(), rest]
    return None


def analyze_command_line(command_line: str, syntax: ShellSyntax) -> Analysis:
    """Analyse a command line (``process.command_line``) when no argv is available. ECS joins the args with
    spaces, losing their quoting, so a shell's ``-c`` string is taken to be the rest of the line
    (``sh -c curl x | sh`` runs ``curl x | sh``); any other line is lexed as a script whose first command is
    the exec."""
    walker = _Walker(syntax)
    argv = _joined_shell_argv(command_line, syntax.shells)
    if argv is not None:
        walker.argv(argv, (), 0, "", chain=True)
    else:
        walker.script(command_line, 0, "", chain=True)
    return walker.result()
