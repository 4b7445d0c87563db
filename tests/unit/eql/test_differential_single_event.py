"""Differential test: every single-event stage predicate of the vendored rules against Elastic's ``eql`` 1.0.1.

Each stage's condition is printed back from *our* AST into eql's syntax with AST-level rewrites where its
dialect differs from Elasticsearch's (DESIGN §3), then both engines judge the same generated documents:

- arrays: eql's comparisons do not look into lists; Elasticsearch matches when any element does. Every
  comparison over fields becomes ``arraySearch(field, v, <comparison on v>)`` (nested for two fields), and the
  generator emits every field as a list (Elasticsearch treats a scalar as a one-element list; the semantics
  table covers scalars). ``== null`` becomes ``not arraySearch(field, v, true)``, ``!=`` ``not (... == ...)``
  (Elasticsearch's ``!=`` is the complement of ``==``).
- case: eql's global ``CASE_INSENSITIVE`` is switched off (``==``, ``in``, ``like`` case-sensitive); ``:``,
  ``in~``, ``like~`` and the ``~`` functions become anchored ``(?i:...)`` regexes with ``match``; the generator
  uses ASCII only (Python's ``(?i)`` folds more than Elasticsearch, e.g. U+017F).
- cidrmatch: eql registers ``cidrMatch``, wants CIDR blocks (``::1`` becomes ``::1/128``) and raises on a
  non-address; the generator emits valid, canonical, unmapped addresses for fields under ``cidrmatch`` and
  for ECS ``ip`` fields (mapped and malformed addresses are in the semantics table).
- the category: ``any where arraySearch(event.category, c, c == "<category>") and (...)``.

Rules are skipped only where a literal holds a double quote (no eql raw string can carry it); the test
asserts at least 30 rules take part and prints the counts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eql

from shellwatch.eql.ast import And, Call, Compare, EventQuery, Expr, Field, InSet, Literal, Not, Or, Sequence, Wildcard
from shellwatch.eql.compile import CATEGORY_FIELD
from shellwatch.eql.values import is_ip_field
from shellwatch.rules.eql_rule import EqlRule, load_eql_rules
from tests.unit.core.test_differential_eql import _eql_case_sensitive

VENDORED = Path(__file__).parents[2] / "rules" / "elastic"
DOCS_PER_STAGE = 300
END = "\\Z"  # eql's match anchors only the start


class UnprintableError(Exception):
    pass


def _raw(text: str) -> str:
    if '"' in text or text.endswith("\\"):
        raise UnprintableError(text)
    return f'"""{text}"""'


def _lit(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _raw(str(value))


def _wild_regex(pattern: str, wildcards: bool) -> str:
    out = []
    for ch in pattern:
        if wildcards and ch == "*":
            out.append(".*")
        elif wildcards and ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _match(var: str, alternatives: list[str], insensitive: bool) -> str:
    body = "|".join(f"(?:{a})" for a in alternatives)
    regex = ("(?is:" if insensitive else "(?s:") + body + ")" + END
    return f"match({var}, {_raw(regex)})"


def _cidr(spec: str) -> str:
    return spec if "/" in spec else spec + ("/128" if ":" in spec else "/32")


class Printer:
    """Our AST -> eql 1.0.1 text with Elasticsearch's semantics (see the module docstring)."""

    def __init__(self) -> None:
        self.count = 0

    def atom(self, expr: Expr, fields: list[str]) -> str:
        names = {f: f"v{self.count}_{i}" for i, f in enumerate(sorted(set(fields)))}
        self.count += 1
        text = self.inner(expr, names)
        for field, var in reversed(list(names.items())):
            text = f"arraySearch({field}, {var}, {text})"
        return text

    def value(self, expr: Expr, names: dict[str, str]) -> str:
        if isinstance(expr, Field):
            return names[expr.path]
        if isinstance(expr, Literal):
            return _lit(expr.value)
        if isinstance(expr, Call) and expr.name == "length":
            return f"length({self.value(expr.args[0], names)})"
        return self.inner(expr, names)

    def inner(self, expr: Expr, names: dict[str, str]) -> str:
        if isinstance(expr, Compare):
            return f"({self.value(expr.left, names)} {expr.op} {self.value(expr.right, names)})"
        if isinstance(expr, InSet):
            var = self.value(expr.value, names)
            if expr.insensitive:
                return _match(var, [_wild_regex(str(i.value), False) for i in expr.items], True)
            return f"({var} in ({', '.join(_lit(i.value) for i in expr.items)}))"
        if isinstance(expr, Wildcard):
            alternatives = [_wild_regex(p, True) for p in expr.patterns]
            return _match(self.value(expr.value, names), alternatives, expr.insensitive)
        if isinstance(expr, Call):
            var = self.value(expr.args[0], names)
            if expr.name == "cidrmatch":
                return f"cidrMatch({var}, {', '.join(_lit(_cidr(str(a.value))) for a in expr.args[1:])})"  # type: ignore[union-attr]
            text = _wild_regex(str(expr.args[1].value), False)  # type: ignore[union-attr]
            regex = {"startswith": text + ".*", "endswith": ".*" + text, "stringcontains": ".*" + text + ".*"}
            return _match(var, [regex[expr.name]], expr.insensitive)
        if isinstance(expr, Field):
            return f"({names[expr.path]} == true)"
        raise UnprintableError(repr(expr))

    def condition(self, expr: Expr) -> str:
        if isinstance(expr, And):
            return "(" + " and ".join(self.condition(e) for e in expr.operands) + ")"
        if isinstance(expr, Or):
            return "(" + " or ".join(self.condition(e) for e in expr.operands) + ")"
        if isinstance(expr, Not):
            return f"(not {self.condition(expr.operand)})"
        if isinstance(expr, Literal):
            return _lit(expr.value)
        if isinstance(expr, Compare) and isinstance(expr.right, Literal) and expr.right.value is None:
            assert isinstance(expr.left, Field)
            present = f"arraySearch({expr.left.path}, n{self.count}, true)"
            self.count += 1
            return present if expr.op == "!=" else f"(not {present})"
        if isinstance(expr, Compare) and expr.op == "!=":
            return f"(not {self.atom(Compare('==', expr.left, expr.right), _fields(expr))})"
        return self.atom(expr, _fields(expr))


def _fields(expr: Expr) -> list[str]:
    if isinstance(expr, Field):
        return [expr.path]
    if isinstance(expr, Compare):
        return _fields(expr.left) + _fields(expr.right)
    if isinstance(expr, InSet | Wildcard):
        return _fields(expr.value)
    if isinstance(expr, Call):
        return [f for a in expr.args for f in _fields(a)]
    return []


def _walk(expr: Expr) -> Iterator[Expr]:
    yield expr
    children: tuple[Expr, ...] = ()
    if isinstance(expr, And | Or):
        children = expr.operands
    elif isinstance(expr, Not):
        children = (expr.operand,)
    elif isinstance(expr, Compare):
        children = (expr.left, expr.right)
    elif isinstance(expr, InSet | Wildcard):
        children = (expr.value,)
    elif isinstance(expr, Call):
        children = expr.args
    for child in children:
        yield from _walk(child)


# --------------------------------------------------------------------------------------------------
# Generated documents: values drawn from the rule's own literals, varied
# --------------------------------------------------------------------------------------------------

ADDRESSES = [
    "8.8.8.8",
    "10.1.2.3",
    "127.0.0.1",
    "192.168.1.1",
    "0.0.0.0",
    "::1",
    "fe80::1",
    "2001:db8::1",
    "169.254.169.254",
]


def _pools(condition: Expr) -> tuple[dict[str, list[Any]], set[str]]:
    pools: dict[str, list[Any]] = {}
    addresses: set[str] = set()
    for node in _walk(condition):
        literals: list[Any] = []
        target: Expr | None = None
        if isinstance(node, Compare):
            target, literals = node.left, [node.right.value] if isinstance(node.right, Literal) else []
        elif isinstance(node, InSet):
            target, literals = node.value, [i.value for i in node.items]
        elif isinstance(node, Wildcard):
            target, literals = node.value, list(node.patterns)
        elif isinstance(node, Call):
            target, literals = node.args[0], [a.value for a in node.args[1:] if isinstance(a, Literal)]
            if node.name == "cidrmatch" and isinstance(target, Field):
                addresses.add(target.path)
                continue
        if isinstance(target, Call) and target.args and isinstance(target.args[0], Field):
            pools.setdefault(target.args[0].path, []).extend(["a", "abcdef", "x" * 40])
        elif isinstance(target, Field):
            pools.setdefault(target.path, []).extend(v for v in literals if v is not None)
        elif isinstance(node, Field):
            pools.setdefault(node.path, []).extend([True, False])
    return pools, addresses


def _variants(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value + rng.choice([-1, 0, 0, 1])
    text = str(value)
    text = "".join(
        rng.choice(["", "x", "ab/c", "Z"]) if ch == "*" else (rng.choice("aZ.") if ch == "?" else ch) for ch in text
    )
    return rng.choice([text, text, text.upper(), text.lower(), text.swapcase(), text + "x", "x" + text, text[1:], ""])


def _document(
    pools: dict[str, list[Any]], addresses: set[str], category: str | None, rng: random.Random
) -> dict[str, Any]:
    flat: dict[str, list[Any]] = {}
    for field, pool in pools.items():
        if field in addresses or is_ip_field(field):
            continue
        if rng.random() < 0.15:
            continue
        numeric = pool and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pool)
        boolean = pool and all(isinstance(v, bool) for v in pool)
        values = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            if pool and rng.random() < 0.85:
                values.append(_variants(rng.choice(pool), rng))
            else:
                values.append(
                    rng.choice([0, 7])
                    if numeric
                    else rng.choice([True, False])
                    if boolean
                    else rng.choice(["q", "-", "/tmp/x"])
                )
        flat[field] = values
    for field in addresses | {f for f in pools if is_ip_field(f)}:
        if rng.random() < 0.85:
            flat[field] = rng.sample(ADDRESSES, rng.choice([0, 1, 1, 2]))
    categories = ["network", "process", "file", "authentication", "web"]
    flat[CATEGORY_FIELD] = rng.sample(categories, rng.choice([1, 1, 2])) + (
        [category] if category and rng.random() < 0.7 else []
    )
    doc: dict[str, Any] = {}
    for path, values in flat.items():
        node = doc
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UnprintableError(path)
            node = child
        if leaf in node:
            raise UnprintableError(path)
        node[leaf] = values
    return doc


def _stages(rule: EqlRule) -> list[EventQuery]:
    query = rule.compiled.query
    return [s.query for s in query.stages] if isinstance(query, Sequence) else [query]


def test_single_event_predicates_agree_with_eql() -> None:
    rules = load_eql_rules([VENDORED]).rules
    compared_rules, compared_docs, matched, skipped = 0, 0, 0, []
    rng = random.Random(14)
    for rule in rules:
        try:
            printer = Printer()
            stage_texts = []
            for stage in _stages(rule):
                text = printer.condition(stage.condition)
                if stage.category is not None:
                    text = f"arraySearch(event.category, c, c == {_lit(stage.category)}) and {text}"
                stage_texts.append((stage, text))
            with _eql_case_sensitive(), eql.parser.elasticsearch_syntax:
                parsed = [(stage, eql.parse_query(f"any where {text}")) for stage, text in stage_texts]
        except UnprintableError as exc:
            skipped.append((rule.rule_id, str(exc)))
            continue
        for index, (stage, query) in enumerate(parsed):
            pools, addresses = _pools(stage.condition)
            ours = rule.compiled.stages[index].predicate
            for _ in range(DOCS_PER_STAGE):
                try:
                    doc = _document(pools, addresses, stage.category, rng)
                except UnprintableError:
                    continue
                with _eql_case_sensitive():
                    outputs: list[Any] = []
                    engine = eql.PythonEngine()
                    engine.add_output_hook(outputs.append)
                    engine.add_query(query)
                    engine.stream_events([eql.Event("any", 0, doc)])
                theirs = bool(outputs)
                mine = ours(rule.compiled.flatten(doc))
                assert mine == theirs, (rule.rule_id, rule.name, index, doc)
                compared_docs += 1
                matched += mine
        compared_rules += 1
    print(f"\ndifferential: {compared_rules} rules, {compared_docs} documents, {matched} matched; skipped {skipped}")
    assert compared_rules >= 30
    assert matched >= 100  # the generator reaches the matching side, not only the trivial one
