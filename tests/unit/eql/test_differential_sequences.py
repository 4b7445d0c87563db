"""Differential test: whole rules (sequences included) run by ``shellwatch detect --rules``' engine and by Elastic's
``eql`` 1.0.1 ``PythonEngine`` on generated event streams; the sets of matched event tuples must be equal.

Each stage's condition is printed into eql's syntax by the single-event test's :class:`Printer` (arrays, case,
cidrmatch and the category rewritten at the AST level), and the sequence around it by :func:`eql_query`:

- mandatory join keys: eql joins a missing key with another missing key (its key is a plain tuple);
  Elasticsearch never joins one. Each stage gains ``and <key> != null`` for every key that is not ``?key``
  (the generator emits a key as a one-element list or not at all, so ``!= null`` is exactly "has a value").
- ``runs=N`` is passed through (``allow_runs``: eql expands it into N stages, as Elasticsearch does).
- maxspan in milliseconds with ``time_unit`` 1000 (``Event.time`` is epoch ms).

How eql runs a sequence (``eql/engine.py``, ``_convert_sequence``): stage callbacks registered in reverse, so
an event fills a later stage before it may start or extend an earlier one (never two stages of one
sequence); ``lookups[next][key] = sequence`` (the newest sequence at a stage replaces the pending one);
``pop`` on completion (consumed); a pending sequence is dropped once an event is more than maxspan after its
first event (inclusive maxspan). These agree with Elasticsearch's ``SequenceMatcher`` (see
:mod:`shellwatch.core.sequence_engine`), so eql is the oracle for them.

Order: eql applies events as fed. Generated timestamps are distinct (the same-millisecond tie-break is ours,
covered by the hand table in ``tests/unit/core/test_rule_runner.py``), eql gets them sorted, and ours gets
them shuffled within the allowed lateness, so our reorder buffer has work to do.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import eql
import orjson

from shellwatch.core.rule_runner import RuleRunner, RunnerConfig
from shellwatch.eql.ast import And, Call, Compare, EventQuery, Expr, Field, InSet, Literal, Not, Or, Sequence, Wildcard
from shellwatch.eql.compile import CompiledQuery
from shellwatch.eql.values import is_ip_field
from shellwatch.rules.eql_rule import EqlRule, load_eql_rules
from tests.unit.core.test_differential_eql import _eql_case_sensitive
from tests.unit.eql.test_differential_single_event import (
    VENDORED,
    Printer,
    UnprintableError,
    _document,
    _lit,
    _pools,
)

T0 = 1_700_000_000_000
LATENESS_MS = 2000
STREAMS_PER_RULE = 12
Matched = tuple[int, ...]


def eql_query(rule: EqlRule) -> str:
    """The rule in eql 1.0.1's dialect with Elasticsearch's semantics (module docstring)."""
    query = rule.compiled.query
    printer = Printer()

    def stage_text(event_query: EventQuery, mandatory: Iterable[str]) -> str:
        text = printer.condition(event_query.condition)
        if event_query.category is not None:
            text = f"arraySearch(event.category, c, c == {_lit(event_query.category)}) and {text}"
        for key in mandatory:
            text = f"{text} and {key} != null"
        return f"any where {text}"

    if isinstance(query, EventQuery):
        return stage_text(query, ())
    assert isinstance(query, Sequence)
    head = "sequence"
    if query.keys:
        head += " by " + ", ".join(k.path for k in query.keys)
    if query.maxspan_ms is not None:
        head += f" with maxspan={query.maxspan_ms}ms"
    parts = [head]
    for stage, compiled in zip(query.stages, rule.compiled.stages, strict=True):
        mandatory = [k for k in compiled.keys if k not in compiled.optional_keys]
        text = f"[{stage_text(stage.query, mandatory)}]"
        if stage.keys:
            text += " by " + ", ".join(k.path for k in stage.keys)
        if stage.runs > 1:
            text += f" with runs={stage.runs}"
        parts.append(text)
    return "\n".join(parts)


def parse_for_eql(text: str) -> Any:
    with _eql_case_sensitive(), eql.parser.elasticsearch_syntax, eql.parser.allow_runs:
        return eql.parse_query(text)


def eql_matches(parsed: Any, docs: list[dict[str, Any]]) -> Counter[Matched]:
    """eql's matches over ``docs`` fed in ``@timestamp`` order: tuples of the documents' ``test.index``."""
    outputs: list[Any] = []
    with _eql_case_sensitive():
        engine = eql.PythonEngine({"time_unit": 1000})
        engine.add_output_hook(outputs.append)
        engine.add_query(parsed)
        ordered = sorted(docs, key=lambda d: d["@timestamp"])
        engine.stream_events([eql.Event("any", d["@timestamp"], d) for d in ordered])
    return Counter(tuple(e.data["test"]["index"] for e in out.events) for out in outputs)


def our_matches(rule_alerts: Iterable[dict[str, Any]]) -> Counter[Matched]:
    return Counter(
        tuple(orjson.loads(orjson.dumps(e))["test"]["index"] for e in alert["detection"]["events"])
        for alert in rule_alerts
    )


def arrival_order(docs: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The documents out of order by less than the allowed lateness (what a real input does)."""
    return sorted(docs, key=lambda d: d["@timestamp"] + rng.uniform(0, LATENESS_MS * 0.9))


def run_ours(rules: list[EqlRule], docs: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    runner = RuleRunner(rules, RunnerConfig(allowed_lateness_ms=LATENESS_MS, mask_secrets=False))
    alerts: list[dict[str, Any]] = []
    for doc in arrival_order(docs, rng):
        outcome = runner.process(orjson.dumps(doc), 0)
        assert outcome.error is None, outcome.error
        alerts.extend(outcome.alerts)
    alerts.extend(runner.flush(0))
    return alerts


# --------------------------------------------------------------------------------------------------
# Generated streams: attempts at the whole sequence, perturbed, interleaved
# --------------------------------------------------------------------------------------------------


def _instance(pattern: str, rng: random.Random, wildcards: bool = True) -> str:
    if not wildcards:
        return pattern
    return "".join(rng.choice(["", "x", "/q"]) if ch == "*" else ("a" if ch == "?" else ch) for ch in pattern)


def _address_in(spec: str) -> str:
    network = ipaddress.ip_network(spec, strict=False)
    return str(network.network_address + (1 if network.num_addresses > 2 else 0))


class Solver:
    """Field values that make a condition hold (``want=True``) or fail: most random documents match nothing."""

    def __init__(self, rng: random.Random, addresses: set[str]) -> None:
        self.rng = rng
        self.addresses = addresses
        self.values: dict[str, list[Any]] = {}

    def put(self, expr: Expr, value: Any) -> None:
        if isinstance(expr, Field):
            if expr.path in self.addresses or is_ip_field(expr.path):
                try:
                    value = str(ipaddress.ip_address(value))  # eql's cidrMatch raises on a non-address
                except ValueError:
                    value = "8.8.8.8"
            self.values.setdefault(expr.path, []).append(value)
        elif isinstance(expr, Call) and expr.args and isinstance(expr.args[0], Field) and expr.name == "length":
            self.values.setdefault(expr.args[0].path, []).append("x" * int(value))

    def solve(self, expr: Expr, want: bool) -> None:
        rng = self.rng
        if isinstance(expr, And | Or):
            parts = list(expr.operands)
            if (isinstance(expr, And)) == want:
                for part in parts:
                    self.solve(part, want)
            else:
                self.solve(rng.choice(parts), want)
        elif isinstance(expr, Not):
            self.solve(expr.operand, not want)
        elif isinstance(expr, Compare) and isinstance(expr.right, Literal):
            literal = expr.right.value
            if literal is None:
                if (expr.op == "!=") == want:
                    self.put(expr.left, "present")
            elif expr.op in ("==", "!="):
                if (expr.op == "==") == want:
                    self.put(expr.left, literal)
            elif isinstance(literal, int | float) and not isinstance(literal, bool):
                bigger = expr.op in (">", ">=")
                self.put(expr.left, literal + (1 if bigger == want else -1))
        elif isinstance(expr, InSet) and want and expr.items:
            item = rng.choice(expr.items).value
            self.put(expr.value, item.swapcase() if expr.insensitive and isinstance(item, str) else item)
        elif isinstance(expr, Wildcard) and want:
            text = _instance(rng.choice(expr.patterns), rng)
            self.put(expr.value, text.upper() if expr.insensitive and rng.random() < 0.3 else text)
        elif isinstance(expr, Call) and want and len(expr.args) > 1 and isinstance(expr.args[1], Literal):
            text = str(expr.args[1].value)
            if expr.name == "cidrmatch":
                self.put(expr.args[0], _address_in(str(rng.choice(expr.args[1:]).value)))  # type: ignore[union-attr]
            elif expr.name in ("startswith", "endswith", "stringcontains"):
                self.put(expr.args[0], {"startswith": text + "zz", "endswith": "zz" + text}.get(expr.name, "z" + text))
        elif isinstance(expr, Field) and want:
            self.put(expr, True)

    def document(self, category: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for path, values in self.values.items():
            _set(doc, path, values)
        doc.setdefault("event", {})
        if not isinstance(doc["event"], dict):
            raise UnprintableError("event")
        categories = doc["event"].get("category") or []
        doc["event"]["category"] = list(categories) + ([category] if category else [])
        return doc


@dataclass
class StagePool:
    matching: list[dict[str, Any]]
    other: list[dict[str, Any]]


def stage_pools(compiled: CompiledQuery, query: Any, rng: random.Random, tries: int = 1500) -> list[StagePool]:
    stages = [s.query for s in query.stages] if isinstance(query, Sequence) else [query]
    pools: list[StagePool] = []
    for index, stage in enumerate(stages):
        values, addresses = _pools(stage.condition)
        pool = StagePool([], [])
        for attempt in range(tries):
            try:
                if attempt % 2:
                    doc = _document(values, addresses, stage.category, rng)
                else:
                    solver = Solver(rng, addresses)
                    solver.solve(stage.condition, True)
                    doc = solver.document(stage.category)
            except UnprintableError:
                continue
            fits = compiled.stages[index].predicate(compiled.flatten(doc))
            target = pool.matching if fits else pool.other
            if len(target) < 40:
                target.append(doc)
            if len(pool.matching) >= 40 and len(pool.other) >= 10:
                break
        pools.append(pool)
    return pools


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    node = doc
    *parents, leaf = path.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UnprintableError(path)
        node = child
    if isinstance(node.get(leaf), dict):
        raise UnprintableError(path)
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


def key_value(path: str, choice: int) -> Any:
    if path.endswith(".ip"):
        return ["10.0.0.1", "2001:db8::7"][choice]
    if path.endswith(".pid") or (path.endswith(".id") and "entity" not in path and "host" not in path):
        return [101, 202][choice]
    return ["k-a", "k-b"][choice]


def stream(rule: EqlRule, pools: list[StagePool], rng: random.Random) -> list[dict[str, Any]]:
    compiled = rule.compiled
    positions = [i for i, s in enumerate(compiled.stages) for _ in range(s.runs)]
    span = compiled.maxspan_ms or 10_000
    step = max(1, span // max(1, len(positions)))
    key_fields = sorted({k for s in compiled.stages for k in s.keys})
    attempts: list[list[tuple[int, dict[str, Any]]]] = []
    for _ in range(rng.choice([1, 2, 3])):
        choice = {k: rng.choice([0, 0, 1]) for k in key_fields}
        attempt: list[tuple[int, dict[str, Any]]] = []
        for position in positions:
            roll = rng.random()
            if roll < 0.05:
                continue  # a stage skipped
            pool = pools[position]
            source = pool.other if (roll < 0.12 and pool.other) or not pool.matching else pool.matching
            if not source:
                continue
            repeat = 2 if rng.random() < 0.08 else 1
            for _ in range(repeat):
                doc = orjson.loads(orjson.dumps(rng.choice(source)))
                for key in compiled.stages[position].keys:
                    if rng.random() < 0.06:
                        _set(doc, key, None)  # a missing join key
                    else:
                        flip = rng.random() < 0.08
                        _set(doc, key, [key_value(key, choice[key] ^ flip)])
                gap = rng.choice([1, 3, max(1, step // 4), step // 2 + 1, step, span, span + 1])
                attempt.append((gap, doc))
        attempts.append(attempt)
    merged: list[dict[str, Any]] = []
    now = T0
    cursors = [0] * len(attempts)
    while any(c < len(a) for c, a in zip(cursors, attempts, strict=True)):
        live = [i for i, a in enumerate(attempts) if cursors[i] < len(a)]
        pick = rng.choice(live)
        gap, doc = attempts[pick][cursors[pick]]
        cursors[pick] += 1
        now += gap
        doc["@timestamp"] = now
        merged.append(doc)
    for index, doc in enumerate(merged):
        doc["test"] = {"index": index}
    return merged


def compare_rule(rule: EqlRule, rng: random.Random) -> tuple[int, int, int]:
    """(streams, events, matches) compared for one rule; asserts the two engines agree on every stream."""
    parsed = parse_for_eql(eql_query(rule))
    pools = stage_pools(rule.compiled, rule.compiled.query, rng)
    events = matches = compared = 0
    for _ in range(STREAMS_PER_RULE):
        try:
            docs = stream(rule, pools, rng)
        except UnprintableError:
            continue
        if not docs:
            continue
        theirs = eql_matches(parsed, docs)
        ours = our_matches(run_ours([rule], docs, rng))
        assert ours == theirs, (rule.rule_id, rule.name, eql_query(rule), docs)
        compared += 1
        events += len(docs)
        matches += sum(theirs.values())
    return compared, events, matches


def test_rules_agree_with_eql_on_generated_streams() -> None:
    rules = load_eql_rules([VENDORED]).rules
    rng = random.Random(1414)
    compared_rules = sequences = streams = events = matches = 0
    rules_with_matches = 0
    skipped: list[tuple[str, str]] = []
    for rule in rules:
        try:
            counts = compare_rule(rule, rng)
        except UnprintableError as exc:
            skipped.append((rule.rule_id, str(exc)[:40]))
            continue
        compared_rules += 1
        sequences += rule.compiled.is_sequence
        streams += counts[0]
        events += counts[1]
        matches += counts[2]
        rules_with_matches += counts[2] > 0
    print(
        f"\nsequence differential: {compared_rules} rules ({sequences} sequences), {streams} streams, "
        f"{events} events, {matches} matches agreed, {rules_with_matches} rules with matches; skipped {skipped}"
    )
    assert compared_rules >= 30
    assert sequences >= 20
    assert rules_with_matches >= 25
    assert matches >= 200
