"""Lexing a shell command string the way a POSIX shell (bash) would, closely enough to see what it runs.

:func:`parse_script` turns text into pipelines of raw commands (words and redirection targets) plus the
command substitutions (``$(...)``, backticks) found on the way. It is total: unbalanced quotes, stray
operators, control characters or megabytes of text never raise; an unterminated quote runs to the end.

What it models: quotes (``'...'``, ``"..."``, ``$'...'``), backslash escapes, comments, control operators
(``;`` ``|`` ``&&`` ``||`` ``&`` ``|&`` newlines, parentheses), redirections with their targets (IO
numbers included: ``0>&1``), ``${IFS}``/``$IFS`` as a word separator, and brace expansion of unquoted
words (``{echo,aGk=}`` is the two words ``echo aGk=``). Java's ``Runtime.exec(String)`` splits on spaces
only, which is why payloads spell ``bash -c {echo,BASE64}|{base64,-d}|{bash,-i}``.
What it does not: parameter expansion, globbing, aliases, here-document bodies (their lines are read as
commands, which only ever adds commands to look at).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

__all__ = ["MAX_BRACE_WORDS", "RawCommand", "Script", "expand_braces", "parse_script"]

MAX_BRACE_WORDS = 256  # a word whose brace expansion would yield more stays unexpanded
_MAX_BRACE_NESTING = 32  # deeper brace lists (nested or in a row) stay unexpanded too

# Unquoted brace characters are marked so brace expansion can tell them from quoted ones.
_OPEN, _COMMA, _CLOSE = "\ue000", "\ue001", "\ue002"
_MARK = {"{": _OPEN, ",": _COMMA, "}": _CLOSE}
_UNMARK = str.maketrans({_OPEN: "{", _COMMA: ",", _CLOSE: "}"})

_CONTROL = ("&&", "||", ";;", "|&", ";", "|", "&", "(", ")", "\n")
_REDIRECT = ("&>>", "<<<", "<<-", "&>", ">>", ">&", "<&", "<>", ">|", "<<", ">", "<")
_BY_FIRST = {c: sorted((o for o in (*_REDIRECT, *_CONTROL) if o[0] == c), key=len, reverse=True) for c in "|&;()<>\n"}
_PIPES = frozenset({"|", "|&"})
_OPERATOR_START = frozenset("|&;()<>\n")
# Words that open, close or prefix a compound command: dropped from the front of a command.
_RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time", "esac"}
)
_HEADS = frozenset({"for", "case", "select", "function"})  # their words are not a command
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_IFS = re.compile(r"\$IFS(?![A-Za-z0-9_])|\$\{IFS(?:[:%#/][^}]*)?\}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "e": "\x1b", "a": "\a", "0": "\0"}


@dataclass(frozen=True, slots=True)
class RawCommand:
    words: tuple[str, ...]
    redirects: tuple[str, ...]  # redirection operators and targets, as written (``>&``, ``/dev/tcp/h/1``)


@dataclass(frozen=True, slots=True)
class Script:
    pipelines: tuple[tuple[RawCommand, ...], ...]
    substitutions: tuple[str, ...]  # the text inside each ``$(...)`` and backtick pair, in order


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "control" or "redirect"
    text: str


def _closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing a ``$(`` whose body starts at ``start`` (``len(text)`` if none)."""
    depth, i, n = 1, start, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            end = text.find("'", i + 1)
            i = n if end < 0 else end + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return n


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0
        self.tokens: list[_Token] = []
        self.subs: list[str] = []
        self.word: list[str] = []
        self.in_word = self.quoted = False

    def add(self, chars: str, *, quoted: bool = False) -> None:
        self.word.append(chars)
        self.in_word = True
        self.quoted = self.quoted or quoted

    def flush(self) -> None:
        if self.in_word:
            self.tokens.append(_Token("word", "".join(self.word)))
        self.word, self.in_word, self.quoted = [], False, False

    def run(self) -> list[_Token]:
        text, n = self.text, len(self.text)
        while self.i < n:
            ch = text[self.i]
            if ch in " \t\r\f\v":
                self.flush()
                self.i += 1
            elif ch == "#" and not self.in_word:
                end = text.find("\n", self.i)
                self.i = n if end < 0 else end
            elif ch == "\\":
                if text.startswith("\\\n", self.i):
                    self.i += 2
                else:
                    self.add(text[self.i + 1 : self.i + 2], quoted=True)
                    self.i += 2
            elif ch == "'":
                end = text.find("'", self.i + 1)
                end = n if end < 0 else end
                self.add(text[self.i + 1 : end], quoted=True)
                self.i = end + 1
            elif ch == '"':
                self.i += 1
                self.double_quoted()
            elif ch == "`":
                self.backtick()
            elif ch == "$":
                self.dollar()
            elif ch in _MARK:
                self.add(_MARK[ch])
                self.i += 1
            elif ch in _OPERATOR_START:
                self.operator()
            else:
                self.add(ch)
                self.i += 1
        self.flush()
        return self.tokens

    def double_quoted(self) -> None:
        text, n = self.text, len(self.text)
        self.add("", quoted=True)
        while self.i < n:
            ch = text[self.i]
            if ch == '"':
                self.i += 1
                return
            if ch == "\\" and text[self.i + 1 : self.i + 2] in ('"', "\\", "$", "`", "\n"):
                self.add(text[self.i + 1].replace("\n", ""), quoted=True)
                self.i += 2
            elif ch == "`":
                self.backtick()
            elif text.startswith("$(", self.i):
                self.substitution()
            else:
                self.add(ch, quoted=True)
                self.i += 1

    def backtick(self) -> None:
        text, n, j = self.text, len(self.text), self.i + 1
        while j < n and text[j] != "`":
            j += 2 if text[j] == "\\" else 1
        end = min(j, n)
        self.subs.append(text[self.i + 1 : end].replace("\\`", "`"))
        self.add(text[self.i : end + 1], quoted=True)
        self.i = end + 1

    def substitution(self) -> None:
        close = _closing_paren(self.text, self.i + 2)
        if not self.text.startswith("$((", self.i):  # $(( )) is arithmetic, not a command
            self.subs.append(self.text[self.i + 2 : close])
        self.add(self.text[self.i : close + 1], quoted=True)
        self.i = close + 1

    def dollar(self) -> None:
        text = self.text
        ifs = _IFS.match(text, self.i)
        if ifs is not None:
            self.flush()
            self.i = ifs.end()
        elif text.startswith("$(", self.i):
            self.substitution()
        elif text.startswith("${", self.i):
            end = text.find("}", self.i)
            end = len(text) if end < 0 else end
            self.add(text[self.i : end + 1], quoted=True)
            self.i = end + 1
        elif text.startswith("$'", self.i):
            self.ansi_c()
        elif text.startswith('$"', self.i):
            self.i += 2
            self.double_quoted()
        else:
            self.add("$")
            self.i += 1

    def ansi_c(self) -> None:
        text, n, j = self.text, len(self.text), self.i + 2
        out: list[str] = []
        while j < n and text[j] != "'":
            if text[j] == "\\" and j + 1 < n:
                nxt = text[j + 1]
                hex_digits = re.match(r"[0-9a-fA-F]{1,2}", text[j + 2 : j + 4]) if nxt == "x" else None
                if hex_digits is not None:
                    out.append(chr(int(hex_digits.group(0), 16)))
                    j += 2 + len(hex_digits.group(0))
                    continue
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                j += 2
            else:
                out.append(text[j])
                j += 1
        self.add("".join(out), quoted=True)
        self.i = j + 1

    def operator(self) -> None:
        text, i = self.text, self.i
        op = next(o for o in _BY_FIRST[text[i]] if text.startswith(o, i))
        self.i += len(op)
        if op in _REDIRECT:
            io_number = "".join(self.word)
            if self.in_word and not self.quoted and io_number.isdigit():
                self.word, self.in_word = [], False
                op = io_number + op
            self.flush()
            self.tokens.append(_Token("redirect", op))
        else:
            self.flush()
            self.tokens.append(_Token("control", op))


def _leftmost_list(word: str) -> tuple[int, ...] | None:
    """Positions of the opening brace, top-level commas and closing brace of the leftmost brace list."""
    stack: list[list[int]] = []
    best: tuple[int, ...] | None = None
    for index, ch in enumerate(word):
        if ch == _OPEN:
            stack.append([index])
        elif ch == _COMMA and stack:
            stack[-1].append(index)
        elif ch == _CLOSE and stack:
            bounds = stack.pop()
            if len(bounds) > 1 and (best is None or bounds[0] < best[0]):
                best = (*bounds, index)
    return best


def _expand(word: str, budget: int, depth: int = 0) -> list[str] | None:
    """Brace-expand a marked word; ``None`` when it would exceed ``budget`` words or nest too deeply."""
    bounds = _leftmost_list(word)
    if bounds is None:
        return [word]
    if depth > _MAX_BRACE_NESTING:
        return None
    suffixes = _expand(word[bounds[-1] + 1 :], budget, depth + 1)
    if suffixes is None:
        return None
    out: list[str] = []
    for start, end in itertools.pairwise(bounds):
        middles = _expand(word[start + 1 : end], budget, depth + 1)
        if middles is None or len(out) + len(middles) * len(suffixes) > budget:
            return None
        out.extend(word[: bounds[0]] + middle + suffix for middle in middles for suffix in suffixes)
    return out


def expand_braces(word: str, budget: int = MAX_BRACE_WORDS) -> list[str]:
    """Expand the unquoted brace lists of one lexed word (``a{b,c}`` -> ``ab ac``), unmarked."""
    expanded = _expand(word, budget) if _OPEN in word else None
    if expanded is None or expanded == [word]:
        return [word.translate(_UNMARK)]
    return [w.translate(_UNMARK) for w in expanded if w]  # like bash, drop words that expand to nothing


def _command_words(words: list[str]) -> tuple[str, ...]:
    start = 0
    while start < len(words) and (words[start] in _RESERVED or _ASSIGNMENT.match(words[start])):
        start += 1
    if start < len(words) and words[start] in _HEADS:
        return ()
    return tuple(words[start:])


def parse_script(text: str) -> Script:
    """Pipelines of commands in ``text``; a pipeline has one command per ``|`` stage."""
    lexer = _Lexer(text)
    tokens = lexer.run()
    pipelines: list[tuple[RawCommand, ...]] = []
    stages: list[RawCommand] = []
    words: list[str] = []
    redirects: list[str] = []
    target_pending = False

    def end_stage() -> None:
        command = _command_words(words)
        if command:
            stages.append(RawCommand(command, tuple(redirects)))
        words.clear()
        redirects.clear()

    for token in tokens:
        if token.kind == "word":
            if target_pending:
                redirects.append(token.text.translate(_UNMARK))
                target_pending = False
            else:
                words.extend(expand_braces(token.text))
        elif token.kind == "redirect":
            redirects.append(token.text)
            target_pending = True
        else:
            target_pending = False
            end_stage()
            if token.text not in _PIPES and stages:
                pipelines.append(tuple(stages))
                stages = []
    end_stage()
    if stages:
        pipelines.append(tuple(stages))
    return Script(tuple(pipelines), tuple(lexer.subs))
