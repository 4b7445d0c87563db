"""From query text to the typed AST of :mod:`shellwatch.eql.ast`, refusing whatever is outside the subset.

Every refusal is an :class:`~shellwatch.errors.EqlError` carrying the construct's name (``regex``,
``sample``, ``until``, ``missing event``, ``pipe head``, ``function concat`` ...) and its line and column, so
a rule never loads partially. Syntax errors are ``EqlError("syntax", ...)`` at the offending token.
"""

from __future__ import annotations

import re
from typing import Final, NoReturn, cast, get_args

from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from shellwatch.eql.ast import (
    And,
    Call,
    Compare,
    CompareOp,
    EventQuery,
    Expr,
    Field,
    FunctionName,
    InSet,
    Literal,
    Not,
    Or,
    Query,
    Scalar,
    Sequence,
    Stage,
    Wildcard,
    WildcardOperator,
)
from shellwatch.eql.grammar import parser
from shellwatch.errors import EqlError
from shellwatch.match.comparisons import IpRanges

__all__ = ["parse_query"]

FUNCTIONS: Final = frozenset(get_args(FunctionName))
_TILDE_FUNCTIONS: Final = frozenset({"startswith", "endswith", "stringcontains"})
_ARITY: Final[dict[str, tuple[int, int | None]]] = {
    "cidrmatch": (2, None),
    "startswith": (2, 2),
    "endswith": (2, 2),
    "stringcontains": (2, 2),
    "length": (1, 1),
}
_UNITS_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ESCAPES: Final = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_UNICODE_ESCAPE: Final = re.compile(r"u\{([0-9A-Fa-f]{2,8})\}")
_RESERVED: Final = frozenset(
    {
        "and", "or", "not", "in", "like", "regex", "where", "sequence", "sample",
        "join", "until", "by", "with", "any", "true", "false", "null",
    }
)  # fmt: skip
_REFUSED_TOKENS: Final = {"SAMPLE": "sample", "JOIN": "join", "UNTIL": "until", "PIPE": "pipe", "BANG": "missing event"}

Node = Tree[Token] | Token


def _where(node: Node) -> tuple[int, int]:
    if isinstance(node, Token):
        return node.line or 1, node.column or 1
    meta = node.meta
    return getattr(meta, "line", 1), getattr(meta, "column", 1)


def _refuse(node: Node, construct: str, message: str) -> NoReturn:
    line, column = _where(node)
    raise EqlError(construct, message, line, column)


def _unescape(token: Token) -> str:
    body = token.value[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        unicode = _UNICODE_ESCAPE.match(body, i + 1)
        if unicode is not None:
            out.append(chr(int(unicode.group(1), 16)))
            i = unicode.end()
            continue
        nxt = body[i + 1 : i + 2]
        if nxt not in _ESCAPES:
            _refuse(token, "syntax", f"invalid escape sequence \\{nxt} in a string")
        out.append(_ESCAPES[nxt])
        i += 2
    return "".join(out)


def _literal(tree: Tree[Token]) -> Literal:
    token = cast(Token, tree.children[0])
    kind = token.type
    value: Scalar
    if kind == "STRING":
        value = _unescape(token)
    elif kind == "RAW_STRING":
        value = token.value[3:-3]
    elif kind == "SQ_STRING":
        _refuse(token, "single-quoted string", "strings take double quotes in Elasticsearch's EQL")
    elif kind == "NUMBER":
        text = token.value
        value = int(text) if re.fullmatch(r"-?[0-9]+", text) else float(text)
    else:
        value = {"TRUE": True, "FALSE": False, "NULL": None}[kind]
    return Literal(value)


def _field(tree: Tree[Token]) -> Field:
    optional = False
    parts: list[str] = []
    for child in tree.children:
        if isinstance(child, Token):  # OPT
            optional = True
            continue
        token = cast(Token, child.children[0])
        if token.type == "NAME" and token.value in _RESERVED:
            _refuse(token, "syntax", f"{token.value!r} is a keyword (quote a field of that name in backticks)")
        parts.append(token.value[1:-1].replace("``", "`") if token.type == "BQ_NAME" else token.value)
    return Field(".".join(parts), optional)


def _patterns(tree: Tree[Token], operator: str) -> tuple[str, ...]:
    out: list[str] = []
    for child in tree.children:
        literal = _literal(cast(Tree[Token], child))
        if literal.value is None or isinstance(literal.value, bool):
            _refuse(child, "syntax", f"{operator} needs a string pattern, not {literal.value!r}")
        out.append(str(literal.value))
    return tuple(out)


class _Builder:
    """Tree -> AST, one method per grammar rule."""

    def expr(self, node: Node) -> Expr:
        if isinstance(node, Token):
            _refuse(node, "syntax", f"unexpected {node.value!r}")
        kind = node.data
        if kind == "literal":
            return _literal(node)
        if kind == "field":
            return _field(node)
        if kind == "or_expr":
            return Or(tuple(self.expr(c) for c in node.children))
        if kind == "and_expr":
            return And(tuple(self.expr(c) for c in node.children))
        if kind == "not_op":
            return Not(self.expr(node.children[1]))
        if kind == "compare":
            left, op, right = node.children
            return Compare(cast(CompareOp, cast(Token, op).value), self.expr(left), self.expr(right))
        if kind == "in_op":
            return self._in(node)
        if kind == "wild":
            value, op, patterns = node.children
            operator = cast(Token, op).value
            found = _patterns(cast(Tree[Token], patterns), operator)
            return Wildcard(self.expr(value), found, operator != "like", cast(WildcardOperator, operator))
        if kind == "regex":
            _refuse(node.children[1], "regex", "regular expressions are not supported")
        if kind == "arith":
            _refuse(node.children[1], "arithmetic", f"operator {cast(Token, node.children[1]).value}")
        if kind == "call":
            return self._call(node)
        _refuse(node, "syntax", f"unexpected {kind}")

    def _in(self, node: Tree[Token]) -> Expr:
        children = list(node.children)
        value = self.expr(children.pop(0))
        negated = isinstance(children[0], Token) and children[0].type == "NOT"
        if negated:
            children.pop(0)
        op = cast(Token, children.pop(0))
        items: list[Literal] = []
        for child in children:
            item = self.expr(child)
            if not isinstance(item, Literal):
                _refuse(child, "in with a non-constant", "the list of in may hold constants only")
            items.append(item)
        inset = InSet(value, tuple(items), op.type == "IN_I")
        return Not(inset) if negated else inset

    def _call(self, node: Tree[Token]) -> Call:
        children = [c for c in node.children if c is not None]
        name_token = cast(Token, children.pop(0))
        insensitive = bool(children) and isinstance(children[0], Token) and children[0].type == "TILDE"
        if insensitive:
            children.pop(0)
        name = name_token.value.lower()
        if name not in FUNCTIONS:
            _refuse(name_token, f"function {name_token.value}", "not in the supported subset")
        if insensitive and name not in _TILDE_FUNCTIONS:
            _refuse(name_token, f"function {name_token.value}~", "has no case-insensitive form")
        low, high = _ARITY[name]
        if len(children) < low or (high is not None and len(children) > high):
            wanted = f"{low}" if low == high else f"at least {low}"
            _refuse(name_token, f"function {name_token.value}", f"takes {wanted} arguments, got {len(children)}")
        args = tuple(self.expr(c) for c in children)
        for position, arg in enumerate(args[1:], start=1):
            if not isinstance(arg, Literal) or not isinstance(arg.value, str):
                _refuse(children[position], f"function {name_token.value}", "arguments after the first are strings")
        if name == "cidrmatch":
            try:
                IpRanges.parse([str(cast(Literal, arg).value) for arg in args[1:]])
            except ValueError as exc:
                _refuse(name_token, f"function {name_token.value}", str(exc))
        return Call(cast(FunctionName, name), args, insensitive)

    def keys(self, node: Tree[Token]) -> tuple[Field, ...]:
        out: list[Field] = []
        for child in node.children[1:]:
            key = self.expr(child)
            if not isinstance(key, Field):
                _refuse(child, "join key expression", "join keys are fields")
            out.append(key)
        return tuple(out)

    def event_query(self, node: Tree[Token]) -> EventQuery:
        category_tree, _where_token, condition = node.children
        token = cast(Token, cast(Tree[Token], category_tree).children[0])
        category = None if token.type == "ANY" else (_unescape(token) if token.type == "STRING" else token.value)
        return EventQuery(category, self.expr(condition))

    def stage(self, node: Tree[Token]) -> Stage:
        first = node.children[0]
        if isinstance(first, Token):
            _refuse(first, "missing event", "![...] stages are not supported")
        keys: tuple[Field, ...] = ()
        runs = 1
        for option in node.children[1:]:
            option = cast(Tree[Token], option)
            inner = cast(Tree[Token], option.children[0])
            if option.data == "runs":
                runs = int(cast(Token, option.children[2]).value)
                if runs < 1:
                    _refuse(option, "runs", "runs must be at least 1")
            elif inner.data == "by_clause":
                keys = self.keys(inner)
        return Stage(self.event_query(first), keys, runs)

    def sequence(self, node: Tree[Token]) -> Sequence:
        keys: tuple[Field, ...] = ()
        maxspan_ms: int | None = None
        stages: list[Stage] = []
        for child in node.children[1:]:
            if isinstance(child, Token):
                continue
            if child.data == "until_term":
                _refuse(child, "until", "sequence ... until is not supported")
            elif child.data == "maxspan":
                maxspan_ms = self._maxspan(child)
            elif child.data == "seq_opt":
                if maxspan_ms is not None:
                    _refuse(child, "syntax", "a sequence's [by] comes before [with maxspan]")
                keys = self.keys(cast(Tree[Token], child.children[0]))
            else:
                stages.append(self.stage(child))
        if sum(stage.runs for stage in stages) < 2:
            _refuse(node, "syntax", "a sequence needs at least two stages")
        for stage in stages:
            if len(stage.keys) != len(stages[0].keys):
                _refuse(node, "syntax", "every stage of a sequence needs the same number of join keys")
        return Sequence(keys, maxspan_ms, tuple(stages))

    def _maxspan(self, node: Tree[Token]) -> int:
        number = cast(Token, node.children[2])
        unit = cast(Token, node.children[3]).value if len(node.children) > 3 else ""
        if unit not in _UNITS_MS or not number.value.isdigit():
            _refuse(number, "syntax", f"maxspan needs a whole number with a unit of {', '.join(_UNITS_MS)}")
        return int(number.value) * _UNITS_MS[unit]

    def query(self, node: Tree[Token]) -> Query:
        body, *pipes = node.children
        for pipe in pipes:
            pipe_name = cast(Token, cast(Tree[Token], pipe).children[1]).value
            _refuse(pipe, f"pipe {pipe_name}", "pipes are not supported")
        body = cast(Tree[Token], body)
        if body.data in ("sample", "join"):
            _refuse(body, str(body.data), f"{body.data} queries are not supported")
        if body.data == "sequence":
            return self.sequence(body)
        return self.event_query(body)


def _syntax_error(text: str, exc: UnexpectedInput) -> EqlError:
    line, column = exc.line or 1, exc.column or 1
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return EqlError("syntax", "unexpected end of query", line, column)
        if token.type in _REFUSED_TOKENS:
            return EqlError(_REFUSED_TOKENS[token.type], "not supported here", line, column)
        return EqlError("syntax", f"unexpected {token.value!r}", line, column)
    if isinstance(exc, UnexpectedCharacters):
        return EqlError("syntax", f"unexpected character {text[exc.pos_in_stream or 0]!r}", line, column)
    if isinstance(exc, UnexpectedEOF):
        return EqlError("syntax", "unexpected end of query", line, column)
    return EqlError("syntax", str(exc).splitlines()[0], line, column)


def parse_query(text: str) -> Query:
    """Parse one EQL query; raises :class:`EqlError` with the construct, line and column."""
    try:
        tree = parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    return _Builder().query(tree)
