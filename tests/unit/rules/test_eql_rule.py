"""Rule files in the detection-rules layout: the vendored rules load, problems name file, line and construct."""

from __future__ import annotations

from pathlib import Path

import pytest

from shellwatch.__main__ import main
from shellwatch.rules.eql_rule import EqlRule, RuleProblem, load_eql_rule, load_eql_rules, load_rules_setting

ROOT = Path(__file__).parents[3]
VENDORED = ROOT / "tests" / "rules" / "elastic"
REFUSED = ROOT / "tests" / "rules" / "elastic-refused"
SHIPPED = ROOT / "src" / "shellwatch" / "rules"

RULE = '''[metadata]
creation_date = "2024/01/01"

[rule]
rule_id = "{rule_id}"
name = "A test rule"
severity = "high"
risk_score = 73
language = "eql"
version = 3
query = """
sequence by host.id with maxspan=1s
  [process where process.name == "a"]
  [process where process.name regex "b.*"]
"""
'''


def test_every_vendored_rule_loads() -> None:
    loaded = load_eql_rules([VENDORED])
    assert loaded.problems == ()
    assert len(loaded.rules) >= 30
    assert loaded.skipped == 0
    java = next(r for r in loaded.rules if r.rule_id == "5a3d5447-31c9-409a-aed1-72f9921594fd")
    assert java.name == "Potential Reverse Shell via Java"
    assert java.severity == "medium" and java.risk_score == 47
    assert java.compiled.maxspan_ms == 5000 and java.compiled.host_local
    assert java.threat[0].tactic.id == "TA0002"
    assert java.threat[0].techniques[0][0].id == "T1059"


def test_refused_rules_name_construct_and_file_position() -> None:
    loaded = load_eql_rules([REFUSED])
    assert loaded.rules == ()
    found = {(Path(p.file).name, p.construct, p.line, p.column) for p in loaded.problems}
    assert found == {
        ("defense_evasion_hidden_file_dir_tmp.toml", "regex", 84, 14),
        ("execution_netcon_from_rwx_mem_region_binary.toml", "sample", 60, 1),
    }
    source = (REFUSED / "defense_evasion_hidden_file_dir_tmp.toml").read_text().splitlines()
    assert source[83][13:].startswith("regex")


def test_problem_positions_map_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(RULE.format(rule_id="r1"))
    problem = load_eql_rule(path)
    assert isinstance(problem, RuleProblem)
    assert (problem.construct, problem.line, problem.column) == ("regex", 14, 31)
    assert str(problem) == f"{path}:14:31: regex: regular expressions are not supported"
    assert path.read_text().splitlines()[13][30:].startswith("regex")


def test_duplicate_rule_ids_name_both_files(tmp_path: Path) -> None:
    text = RULE.format(rule_id="dup").replace(' regex "b.*"', ' == "b"')
    (tmp_path / "a.toml").write_text(text)
    (tmp_path / "b.toml").write_text(text)
    loaded = load_eql_rules([tmp_path])
    assert [r.file for r in loaded.rules] == [str(tmp_path / "a.toml")]
    (problem,) = loaded.problems
    assert problem.file == str(tmp_path / "b.toml")
    assert str(tmp_path / "a.toml") in problem.message and problem.construct == "duplicate rule_id"
    rule = loaded.rules[0]
    assert isinstance(rule, EqlRule) and rule.version == "3"


def test_a_config_map_volume_loads_each_rule_once(tmp_path: Path) -> None:
    """A Kubernetes ConfigMap volume: each key a symlink into ``..data``, itself a symlink to a hidden
    timestamped directory holding the files. Rules and exception lists under hidden names are not read twice."""
    names = ["execution_shell_via_java_revshell_linux.toml", "execution_suspicious_java_netcon_childproc.toml"]
    stamped = tmp_path / "..2026_12_01_10_00_00.123456789"
    stamped.mkdir()
    for name in names:
        (stamped / name).write_text((VENDORED / name).read_text())
    (tmp_path / "..data").symlink_to(stamped.name)
    for name in names:
        (tmp_path / name).symlink_to(Path("..data") / name)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "stale.toml").write_text("not toml [")
    loaded = load_eql_rules([tmp_path])
    assert loaded.problems == ()
    assert sorted(r.file for r in loaded.rules) == sorted(str(tmp_path / name) for name in names)
    assert len(load_rules_setting([tmp_path])) == 2


def test_non_eql_files_are_skipped_and_counted() -> None:
    loaded = load_eql_rules([SHIPPED])
    assert loaded.problems == ()
    assert loaded.skipped == 2  # the shipped shell rule and allowlist are not in this layout (the seed rule is)
    assert [r.rule_id for r in loaded.rules] == ["potential-reverse-shell-via-java"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('severity = "high"', 'severity = "urgent"'), "rule.severity: expected one of"),
        (("risk_score = 73", "risk_score = 101"), "rule.risk_score"),
        (('name = "A test rule"\n', ""), "rule.name: missing"),
        (("version = 3", "version = true"), "rule.version"),
        (("[rule]", "[rule\n"), "invalid TOML"),
    ],
)
def test_file_problems(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(RULE.format(rule_id="r1").replace(' regex "b.*"', ' == "b"').replace(*change))
    problem = load_eql_rule(path)
    assert isinstance(problem, RuleProblem)
    assert message in problem.message


def test_check_rules_prints_one_line_per_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-rules", "--rules", str(VENDORED)]) == 0
    lines = capsys.readouterr().out.splitlines()
    java = next(line for line in lines if line.startswith("ok 5a3d5447-31c9-409a-aed1-72f9921594fd "))
    assert java == (
        'ok 5a3d5447-31c9-409a-aed1-72f9921594fd "Potential Reverse Shell via Java" stages=network,process '
        "keys=host.id,process.entity_id | host.id,process.parent.entity_id maxspan_ms=5000 host-local=yes"
    )
    assert lines[-1] == f"{len(lines) - 1} rules loaded, 0 exception lists, 0 failed, 0 non-EQL files skipped"


def test_check_rules_exits_1_naming_each_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-rules", "--rules", str(REFUSED), "--rules", str(SHIPPED)]) == 1
    out = capsys.readouterr().out
    assert "error " in out and ":84:14: regex: " in out and ":60:1: sample: " in out
    assert out.splitlines()[-1] == "1 rules loaded, 0 exception lists, 2 failed, 2 non-EQL files skipped"


def test_check_rules_without_paths_keeps_its_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("potential-reverse-shell-via-java v9: ok (digest ")
    assert lines[1].startswith("shell-spawned-by-java v1: ok (digest ")
