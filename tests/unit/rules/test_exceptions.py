"""Rule exceptions as data: loading and validation, each entry type's semantics, attachment to rules, the rule
runner leaving excepted events out of a rule (as Elasticsearch leaves them out of its search), and
``check-rules`` / ``detect --rules`` on a rules directory holding an exception list."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from shellwatch.__main__ import main
from shellwatch.errors import RuleFileError
from shellwatch.rules.eql_rule import EqlRule, load_eql_rules, load_rule_file
from shellwatch.rules.exceptions import ExceptionList, RuleExceptions, parse_exception_list
from tests.unit.core.test_rule_runner import TWO_STAGES, conn, exe, pairs, rule_file, run

RULE_ID = TWO_STAGES.rule_id


def exception_list(*items: str, rule_ids: str = f'["{RULE_ID}"]', extra: str = "") -> str:
    body = "\n".join(f"[[exception_list.items]]\n{item}" for item in items)
    return f'[exception_list]\nname = "Build farm"\nrule_ids = {rule_ids}\n{extra}\n{body}\n'


def item(name: str, *entries: str) -> str:
    return f'name = "{name}"\nentries = [\n' + ",\n".join(f"  {{ {e} }}" for e in entries) + "\n]"


def entry(field: str, kind: str, value: str | None = None, operator: str = "included") -> str:
    text = f'field = "{field}", operator = "{operator}", type = "{kind}"'
    return text if value is None else f"{text}, value = {value}"


def parsed(source: str) -> ExceptionList:
    return parse_exception_list(tomllib.loads(source), "ex.toml")


def compiled(*entries: str) -> RuleExceptions:
    return RuleExceptions([parsed(exception_list(item("only", *entries)))])


def matches(exceptions: RuleExceptions, doc: dict[str, Any]) -> bool:
    return exceptions.matching(doc) is not None


# -- each entry type, as Elastic's exception entries apply to indexed fields ----------------------------------


def test_match_is_exact_and_case_sensitive_on_any_value() -> None:
    ex = compiled(entry("process.name", "match", '"bash"'))
    assert matches(ex, {"process": {"name": "bash"}})
    assert matches(ex, {"process.name": ["sh", "bash"]})  # dotted key, any value of several
    assert not matches(ex, {"process": {"name": "Bash"}})
    assert not matches(ex, {"process": {"name": "bash "}})
    assert not matches(ex, {"process": {}})


def test_match_any_and_numbers_read_as_eql_equality_reads_them() -> None:
    ex = compiled(entry("destination.port", "match_any", '["8080", "9090"]'))
    assert matches(ex, {"destination": {"port": 8080}})
    assert matches(ex, {"destination": {"port": "9090"}})
    assert not matches(ex, {"destination": {"port": 443}})


def test_wildcard_matches_the_whole_value_case_sensitively() -> None:
    ex = compiled(entry("process.parent.executable", "wildcard", '"/opt/*/bin/java"'))
    assert matches(ex, {"process": {"parent": {"executable": "/opt/jdk-17/bin/java"}}})
    assert not matches(ex, {"process": {"parent": {"executable": "/opt/jdk-17/bin/javac"}}})
    assert not matches(ex, {"process": {"parent": {"executable": "/OPT/jdk-17/bin/java"}}})
    one = compiled(entry("user.name", "wildcard", '"app?"'))
    assert matches(one, {"user": {"name": "app1"}})
    assert not matches(one, {"user": {"name": "app12"}})


def test_exists_and_its_negation() -> None:
    present = compiled(entry("process.parent.entity_id", "exists"))
    absent = compiled(entry("process.parent.entity_id", "exists", operator="excluded"))
    with_parent = {"process": {"parent": {"entity_id": "p1"}}}
    without = {"process": {"parent": {"entity_id": None}}}
    assert matches(present, with_parent) and not matches(present, without)
    assert matches(absent, without) and not matches(absent, with_parent)


def test_excluded_match_holds_on_an_absent_field() -> None:
    ex = compiled(entry("host.name", "match", '"prod-01"', operator="excluded"))
    assert matches(ex, {"host": {"name": "dev-07"}})
    assert matches(ex, {"host": {}})
    assert not matches(ex, {"host": {"name": "prod-01"}})


def test_ip_fields_compare_as_addresses_and_blocks() -> None:
    ex = compiled(entry("destination.ip", "match_any", '["10.0.0.0/8", "2001:db8::1"]'))
    assert matches(ex, {"destination": {"ip": "10.20.30.40"}})
    assert matches(ex, {"destination": {"ip": "::ffff:10.1.1.1"}})  # IPv4-mapped is the IPv4 address
    assert matches(ex, {"destination": {"ip": "2001:0db8:0:0:0:0:0:1"}})
    assert not matches(ex, {"destination": {"ip": "11.0.0.1"}})
    assert not matches(ex, {"destination": {"ip": "not-an-ip"}})


def test_an_item_needs_every_entry_and_any_item_excepts() -> None:
    source = exception_list(
        item("ci agents", entry("host.name", "match_any", '["ci-01", "ci-02"]'), entry("user.name", "match", '"ci"')),
        item("health checks", entry("process.args", "match", '"/healthz"')),
    )
    ex = RuleExceptions([parsed(source)])
    assert ex.matching({"host": {"name": "ci-02"}, "user": {"name": "ci"}}) == "Build farm: ci agents"
    assert ex.matching({"host": {"name": "ci-02"}, "user": {"name": "root"}}) is None  # one entry fails
    assert ex.matching({"host": {"name": "web"}, "process": {"args": ["curl", "/healthz"]}}) == (
        "Build farm: health checks"
    )


# -- validation: every problem is refused with its reason, nothing silently widens an exception ---------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (exception_list(item("a", entry("host.name", "list", '"ci-hosts"'))), "value lists live in Elasticsearch"),
        (exception_list(item("a", entry("process", "nested", '"x"'))), "nested entries"),
        (exception_list(item("a", entry("host.name", "matches", '"x"'))), "expected one of match"),
        (exception_list(item("a", entry("host.name", "match", '"x"', operator="is"))), "expected one of included"),
        (exception_list(item("a", entry("host.name", "exists", '"x"'))), "takes no value"),
        (exception_list(item("a", entry("host.name", "match_any", "[]"))), "non-empty list"),
        (exception_list(item("a", entry("host.name", "match", "3"))), "non-empty string"),
        (exception_list(item("a", entry("destination.ip", "match", '"10.0.0.300"'))), "no address or CIDR"),
        (exception_list(item("a", entry("host..name", "match", '"x"'))), "dotted field name"),
        (exception_list(item("a", 'field = "host.name", operator = "included", type = "match", valeu = "x"')), "valeu"),
        (exception_list(item("a", entry("a.b", "exists")), item("a", entry("c.d", "exists"))), "names two items"),
        (exception_list('name = "empty"\nentries = []'), "would except all"),
        (exception_list(item("a", entry("a.b", "exists")), rule_ids="[]"), "rule_ids"),
        (exception_list(item("a", entry("a.b", "exists")), extra='os_types = ["linux"]'), "os_types"),
        ('[exception_list]\nname = "x"\nrule_ids = ["r"]\n', "at least one"),
    ],
)
def test_problems_are_refused_with_their_reason(source: str, message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        parsed(source)


# -- attached to rules among the rule files ------------------------------------------------------------------


def write_rules(directory: Path, exceptions: str | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rule.toml").write_text(rule_file(TWO_STAGES.query, rule_id=RULE_ID))
    if exceptions is not None:
        (directory / "rule_exceptions.toml").write_text(exceptions)
    return directory


def test_lists_attach_to_the_rules_they_name(tmp_path: Path) -> None:
    source = exception_list(item("a", entry("host.id", "match", '"h2"')))
    loaded = load_eql_rules([write_rules(tmp_path, source)])
    assert loaded.problems == ()
    assert [lst.name for r in loaded.rules for lst in r.exceptions] == ["Build farm"]
    assert isinstance(load_rule_file(tmp_path / "rule_exceptions.toml"), ExceptionList)


def test_a_list_naming_a_rule_that_did_not_load_is_a_problem(tmp_path: Path) -> None:
    source = exception_list(item("a", entry("host.id", "match", '"h2"')), rule_ids='["no-such-rule"]')
    loaded = load_eql_rules([write_rules(tmp_path, source)])
    assert [p.message for p in loaded.problems] == [
        "exception list 'Build farm' is attached to rule_id 'no-such-rule', which no loaded rule has"
    ]


# -- the runner: an excepted event is left out of the rule -----------------------------------------------------


def with_exceptions(rule: EqlRule, *items: str) -> EqlRule:
    loaded = parse_exception_list(tomllib.loads(exception_list(*items)), "ex.toml")
    return replace(rule, exceptions=(loaded,))


def test_an_excepted_event_fills_no_stage_and_consumes_nothing() -> None:
    excepting = with_exceptions(TWO_STAGES, item("health", entry("event.id", "match", '"x-health"')))
    docs = [conn("c", 0), exe("x-health", 1000), exe("x", 2000)]
    alerts, runner = run([excepting], docs)
    # Without the exception, x-health completes the sequence and consumes c; with it, x does.
    assert pairs(run([TWO_STAGES], docs)[0]) == [("c", "x-health")]
    assert pairs(alerts) == [("c", "x")]
    assert runner.stats.excepted == {(RULE_ID, "Build farm: health"): 1}


def test_an_excepted_first_event_means_no_sequence_for_its_host_only() -> None:
    excepting = with_exceptions(TWO_STAGES, item("ci", entry("host.id", "match", '"h-ci"')))
    docs = [conn("c1", 0, host="h-ci"), exe("x1", 10, host="h-ci"), conn("c2", 0, host="h2"), exe("x2", 10, host="h2")]
    alerts, runner = run([excepting], docs)
    assert pairs(alerts) == [("c2", "x2")]
    assert runner.stats.excepted == {(RULE_ID, "Build farm: ci"): 2}


# -- the commands ----------------------------------------------------------------------------------------------


def test_check_rules_names_the_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = exception_list(item("a", entry("host.id", "match", '"h2"')), item("b", entry("host.id", "exists")))
    assert main(["check-rules", "--rules", str(write_rules(tmp_path, source))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"ok {RULE_ID} ") and lines[0].endswith(" exceptions=2 (Build farm)")
    assert lines[-1] == "1 rules loaded, 1 exception lists, 0 failed, 0 non-EQL files skipped"


def test_detect_rules_leaves_excepted_events_out_and_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = exception_list(item("ci", entry("host.id", "match", '"h-ci"')))
    rules = write_rules(tmp_path / "rules", source)
    lines = tmp_path / "events.ndjson"
    docs = [conn("c1", 0, host="h-ci"), exe("x1", 10, host="h-ci"), conn("c2", 0, host="h2"), exe("x2", 10, host="h2")]
    lines.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    assert main(["detect", "--rules", str(rules), str(lines)]) == 0
    captured = capsys.readouterr()
    alerts = [orjson.loads(line) for line in captured.out.splitlines()]
    assert pairs(alerts) == [("c2", "x2")]
    assert f"shellwatch detect: 2 events excepted from {RULE_ID} by 'Build farm: ci'" in captured.err.splitlines()
