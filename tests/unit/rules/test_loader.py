"""The seed rule file loads into the rule the built-in correlator runs; every deliberately broken one fails
naming its file (and field or query construct)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shellwatch.__main__ import main
from shellwatch.rules.loader import RuleError, shipped_rule_path
from shellwatch.rules.reverse_shell_rule import REVERSE_SHELL_RULE_FILE, load_reverse_shell_rule

FIXTURES = Path(__file__).parent / "rule_fixtures"
ELASTIC_ID = "5a3d5447-31c9-409a-aed1-72f9921594fd"


def test_shipped_rule_loads_from_its_query() -> None:
    rule = load_reverse_shell_rule()
    meta = rule.meta
    assert (meta.id, meta.uuid, meta.name) == (
        "potential-reverse-shell-via-java",
        ELASTIC_ID,
        "Potential Reverse Shell via Java",
    )
    assert (meta.version, meta.severity, meta.risk_score, rule.maxspan_ms) == ("9", "medium", 47, 5000)
    assert meta.reference == "https://www.elastic.co/guide/en/security/current/potential-reverse-shell-via-java.html"
    assert [(s.category, s.keys, s.runs) for s in (rule.network, rule.process)] == [
        ("network", ("host.id", "process.entity_id"), 1),
        ("process", ("host.id", "process.parent.entity_id"), 1),
    ]
    assert rule.network.reads == ("host.os.type", "event.action", "process.executable", "destination.ip")
    assert rule.process.reads[2:] == ("process.parent.executable", "process.parent.args", "process.name")
    assert rule.compiled.stages == (rule.network, rule.process)
    assert [(t.tactic.id, [(te.id, [s.id for s in subs]) for te, subs in t.techniques]) for t in meta.threat] == [
        ("TA0002", [("T1059", ["T1059.004"])]),
        ("TA0011", [("T1071", [])]),
    ]
    assert rule.query.startswith("sequence by host.id with maxspan=5s\n[network where host.os.type")


def test_the_query_is_elastics_version_9_verbatim() -> None:
    """The vendored copy of Elastic's current rule differs from version 9 in its exclusions only."""
    vendored = (
        Path(__file__).parents[2] / "rules" / "elastic" / "execution_shell_via_java_revshell_linux.toml"
    ).read_text()
    assert f'rule_id = "{ELASTIC_ID}"' in vendored
    query = load_reverse_shell_rule().query
    for line in query.strip().splitlines()[:12]:  # the network stage, to its closing "by process.entity_id"
        assert line.strip() in vendored
    assert '"/usr/lib64/NetExtender.jar", "/usr/lib/jenkins/jenkins.war"\n)] by process.parent.entity_id' in query


def test_digest_changes_with_content(tmp_path: Path) -> None:
    text = shipped_rule_path(REVERSE_SHELL_RULE_FILE).read_text()
    changed = tmp_path / "rule.toml"
    changed.write_text(text.replace('"ksh", "fish")', '"ksh", "fish", "mksh")'))
    assert load_reverse_shell_rule(changed).digest != load_reverse_shell_rule().digest


BROKEN: list[tuple[str, list[str]]] = [
    (
        "old_layout.toml",
        [
            "the rule file is now Elastic's detection-rules layout",
            "top-level id, maxspan_ms and the [network]/[process] lists",
            "Start from the shipped potential_reverse_shell_via_java.toml",
        ],
    ),
    ("not_a_sequence.toml", ["the built-in correlator cannot run this query: it is not a sequence"]),
    (
        "wrong_shape.toml",
        [
            "it is a sequence by user.id, not by host.id; it has no maxspan",
            "stage 1 is [process where ...], not [network where ...]",
            "stage 1 joins by user.id, process.entity_id, not by host.id, process.entity_id",
            "stage 1 runs 2 times, not once",
            "stage 2 joins by user.id, ?process.parent.entity_id, not by host.id, process.parent.entity_id",
        ],
    ),
    ("three_stages.toml", ["it has 3 stages, not 2"]),
    ("missing_for_alerts.toml", ["rule.version: missing (alerts carry it)", "rule.references: missing"]),
    ("bad_query.toml", ["bad_query.toml:16:36: syntax: unexpected ':'"]),  # the query's line 2 is the file's 16
    ("bad_values.toml", ["rule.severity: expected one of low, medium, high, critical, got 'urgent'"]),
    ("invalid_toml.toml", ["invalid TOML"]),
    ("not_eql.toml", ['not an EQL rule: expected a [rule] table with language = "eql"']),
]


@pytest.mark.parametrize(("fixture", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_rules_name_file_and_fields(fixture: str, expected: list[str]) -> None:
    path = FIXTURES / fixture
    with pytest.raises(RuleError) as caught:
        load_reverse_shell_rule(path)
    for fragment in expected:
        assert any(line.startswith(str(path)) and fragment in line for line in caught.value.problems), (
            fragment,
            caught.value.problems,
        )


@pytest.mark.parametrize("fixture", ["not_a_sequence.toml", "wrong_shape.toml", "three_stages.toml"])
def test_other_shapes_are_pointed_to_detect_rules(fixture: str) -> None:
    path = FIXTURES / fixture
    with pytest.raises(RuleError) as caught:
        load_reverse_shell_rule(path)
    assert f"run this rule with `shellwatch detect --rules {path}`" in str(caught.value)


def test_every_fixture_is_exercised() -> None:
    assert {p.name for p in FIXTURES.glob("*.toml")} == {name for name, _ in BROKEN}


def test_the_rule_file_setting_takes_a_detection_rules_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    copy = tmp_path / "my_rule.toml"
    copy.write_text(
        shipped_rule_path(REVERSE_SHELL_RULE_FILE).read_text().replace('version = "9"', 'version = "9-site"')
    )
    monkeypatch.setenv("SHELLWATCH_RULE_FILE", str(copy))
    assert main(["check-rules"]) == 0
    assert "potential-reverse-shell-via-java v9-site: ok" in capsys.readouterr().out
    monkeypatch.setenv("SHELLWATCH_RULE_FILE", str(FIXTURES / "old_layout.toml"))
    assert main(["check-rules"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shellwatch: {FIXTURES / 'old_layout.toml'}: this rule file has the layout shellwatch used")
