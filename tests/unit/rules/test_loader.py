"""Every shipped rule loads; every deliberately broken rule fails naming its file and field(s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shellwatch.rules.loader import RuleError, load_reverse_shell_rule, shipped_rule_path

FIXTURES = Path(__file__).parent / "rule_fixtures"


def test_shipped_rule_loads_with_its_verbatim_lists() -> None:
    rule = load_reverse_shell_rule()
    assert rule.meta.id == "potential-reverse-shell-via-java"
    assert (rule.meta.version, rule.meta.severity, rule.meta.risk_score, rule.maxspan_ms) == ("9", "medium", 47, 5000)
    assert len(rule.network.excluded_cidrs.specs) == 26
    assert rule.process.names == ("bash", "dash", "ash", "sh", "tcsh", "csh", "zsh", "ksh", "fish")
    # The lists are the query's own: every list entry appears in the verbatim query text.
    for value in (*rule.network.excluded_cidrs.specs, *rule.process.excluded_parent_args, *rule.process.names):
        assert f'"{value}"' in rule.query
    assert [t.technique.id for t in rule.meta.threat] == ["T1059", "T1071"]


def test_digest_changes_with_content(tmp_path: Path) -> None:
    text = shipped_rule_path("potential_reverse_shell_via_java.toml").read_text()
    changed = tmp_path / "rule.toml"
    changed.write_text(text.replace('"fish"]', '"fish", "mksh"]'))
    assert load_reverse_shell_rule(changed).digest != load_reverse_shell_rule().digest


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("unknown_field.toml", ["maxspan_typo: unknown field"]),
        ("bad_cidr.toml", ["network.excluded_cidrs[0]:", "network.excluded_cidrs[1]:"]),
        (
            "bad_values.toml",
            ["severity: expected one of", "risk_score: must be within 0..100", "maxspan_ms: expected int"],
        ),
        ("missing_and_empty.toml", ["process.action: missing", "process.names: must list at least one value"]),
        ("invalid_toml.toml", ["invalid TOML"]),
    ],
)
def test_broken_rules_name_file_and_fields(fixture: str, expected: list[str]) -> None:
    path = FIXTURES / fixture
    with pytest.raises(RuleError) as caught:
        load_reverse_shell_rule(path)
    for fragment in expected:
        assert any(line.startswith(str(path)) and fragment in line for line in caught.value.problems), (
            fragment,
            caught.value.problems,
        )


def test_every_fixture_is_exercised() -> None:
    exercised = {
        "unknown_field.toml",
        "bad_cidr.toml",
        "bad_values.toml",
        "missing_and_empty.toml",
        "invalid_toml.toml",
    }
    assert {p.name for p in FIXTURES.glob("*.toml")} == exercised
