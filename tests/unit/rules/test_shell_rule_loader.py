"""shell-spawned-by-java: the shipped rule and allowlist load; every broken fixture fails naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shellwatch.rules.loader import RuleError, shipped_rule_path
from shellwatch.rules.shell_rule import ALLOWLIST_FILE, SHELL_RULE_FILE, load_shell_rule

FIXTURES = Path(__file__).parent / "shell_rule_fixtures"
RULE_TEXT = shipped_rule_path(SHELL_RULE_FILE).read_text()
ALLOWLIST_TEXT = shipped_rule_path(ALLOWLIST_FILE).read_text()


def test_shipped_rule_and_allowlist_load() -> None:
    rule = load_shell_rule()
    assert (rule.meta.id, rule.meta.name, rule.meta.version) == (
        "shell-spawned-by-java",
        "Shell process created by Java application",
        "1",
    )
    assert rule.meta.reference == "https://docs.datadoghq.com/security/default_rules/java_shell_execution/"
    (threat,) = rule.meta.threat
    ((technique, (subtechnique,)),) = threat.techniques
    assert (threat.framework, threat.tactic.id, technique.id) == ("MITRE ATT&CK", "TA0002", "T1059")
    assert subtechnique.id == "T1059.004"
    assert rule.java_parent_names == ("java", "jspawnhelper")
    assert rule.java_executables.patterns == ("/usr/bin/java", "/bin/java", "/usr/lib/jvm/*", "/usr/java/*")
    assert set(rule.shells) == {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "tcsh", "csh", "fish", "busybox"}
    assert rule.http_utilities == ("curl", "wget", "lwp-download")
    assert rule.unusual_commands == ("curl", "wget", "whoami")
    assert len(rule.recon_commands) == 11
    assert {"exec", "env", "nohup", "timeout", "busybox", "sudo"} <= set(rule.syntax.wrappers)
    assert len(rule.idioms) >= 13
    assert [entry.name for entry in rule.allowlist][:3] == ["jenkins", "netextender", "remote-iot"]


def test_prefilter_patterns_come_from_the_loaded_lists(tmp_path: Path) -> None:
    assert load_shell_rule().prefilter_patterns() == (
        "java",
        "jspawnhelper",
        "/usr/bin/java",
        "/bin/java",
        "/usr/lib/jvm/*",
        "/usr/java/*",
    )
    extended = tmp_path / "rule.toml"
    extended.write_text(
        RULE_TEXT.replace('"jspawnhelper"]', '"jspawnhelper", "zulu-jvm"]').replace(
            '"/usr/java/*"]', '"/usr/java/*", "/opt/java/*"]'
        )
    )
    patterns = load_shell_rule(extended).prefilter_patterns()
    assert "zulu-jvm" in patterns and "/opt/java/*" in patterns


def test_digest_covers_rule_and_allowlist(tmp_path: Path) -> None:
    base = load_shell_rule().digest
    rule, allowlist = tmp_path / "rule.toml", tmp_path / "allow.toml"
    rule.write_text(RULE_TEXT.replace('"busybox"]', '"busybox", "xonsh"]'))
    allowlist.write_text(ALLOWLIST_TEXT + '\n[[allow]]\nname = "site"\nreason = "r"\nparent_args = ["/opt/x.jar"]\n')
    assert load_shell_rule(rule).digest != base
    assert load_shell_rule(allowlist_path=allowlist).digest != base
    assert load_shell_rule().digest == base
    assert len(base) == 64


def test_an_empty_allowlist_is_valid(tmp_path: Path) -> None:
    allowlist = tmp_path / "allow.toml"
    allowlist.write_text("# nothing allowed\n")
    assert load_shell_rule(allowlist_path=allowlist).allowlist == ()


def test_operator_additions_load(tmp_path: Path) -> None:
    rule = tmp_path / "rule.toml"
    rule.write_text(
        RULE_TEXT.replace('"busybox"]', '"busybox", "xonsh"]')
        + '\n[[idioms]]\nname = "miner"\ndescription = "a coin miner"\ncommand = { programs = ["xmrig*"] }\n'
        + "\n[wrappers.chrt]\noperands = 1\n"
    )
    loaded = load_shell_rule(rule)
    assert "xonsh" in loaded.shells and "xonsh" in loaded.syntax.shells
    assert loaded.idioms[-1].name == "miner"
    # a named list referenced by an idiom is resolved after the operator's additions
    interactive = next(i for i in loaded.idioms if i.name == "interactive-shell")
    assert interactive.command is not None and "xonsh" in interactive.command.programs
    assert loaded.syntax.wrappers["chrt"].operands == 1


RULE_FIXTURES = [
    (
        "unknown_keys.toml",
        [
            "lists.shelss: unknown field",
            "wrappers.env.asignments: unknown field",
            "idioms[0].command.flagz: unknown field",
            "severity: unknown field",
        ],
    ),
    (
        "bad_lists.toml",
        [
            "lists.java_parent_names[0]: expected an exact program name",
            "lists.java_parent_names[2]: 'java' is listed twice",
            "lists.java_executables[0]: pattern '*' has no literal text",
            "lists.shells: must list at least one value",
            "lists.http_utilities[0]: expected an exact program name",
            "lists.recon_commands: missing",
            "lists.unusual_commands[1]: expected a non-empty string",
        ],
    ),
    (
        "bad_idioms.toml",
        [
            "idioms[0].substrings: give exactly one of substrings, command, pipeline",
            "idioms[1].command.flags[0]: a short flag is one letter",
            "idioms[1].command.long_flags[0]: a long flag starts with '--'",
            "idioms[2].command.programs_from: expected one of",
            "idioms[3].command.payload_contains: needs options",
            "idioms[4].command.programs[0]: pattern 'nc[' has an unclosed '['",
            "idioms[4].command.programs[1]: a program is a basename",
            "idioms[5].name: duplicate idiom name",
            "idioms[6].pipeline.to: missing",
            "idioms[7].substrings: give exactly one of",
        ],
    ),
    (
        "bad_wrappers.toml",
        [
            "wrappers.timeout.value_options[0]: expected '-x' or '--name'",
            "wrappers.timeout.operands: must be 0 or more",
            "wrappers.env.split_options[0]: '-S' must also be in value_options",
            "wrappers.env.assignments: expected bool",
        ],
    ),
    (
        "missing_sections.toml",
        [
            "name: missing",
            "reference: must not be empty",
            "threat[0].tactic.reference: missing",
            "wrappers: missing",
            "idioms: missing",
            "confluence: missing",
        ],
    ),
    ("invalid_toml.toml", ["invalid TOML"]),
]
ALLOWLIST_FIXTURES = [
    (
        "bad_allowlist.toml",
        [
            "alow: unknown field",
            "allow[0].parent_args[0]: pattern '*' matches everything",
            "allow[1].reason: missing",
            "allow[1].parent_args[0]: pattern '/opt/app/[abc.jar' has an unclosed '['",
            "allow[1].host_ids: expected list",
            "allow[2].name: duplicate entry name",
            "allow[2].hosts: unknown field",
        ],
    ),
]


def _problems(rule: Path | None = None, allowlist: Path | None = None) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load_shell_rule(rule, allowlist)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def _assert_named(problems: list[str], path: Path, expected: list[str]) -> None:
    for fragment in expected:
        assert any(line.startswith(f"{path}: ") and fragment in line for line in problems), (fragment, problems)


@pytest.mark.parametrize(("fixture", "expected"), RULE_FIXTURES, ids=[f for f, _ in RULE_FIXTURES])
def test_broken_rule_names_file_and_fields(fixture: str, expected: list[str]) -> None:
    path = FIXTURES / fixture
    _assert_named(_problems(rule=path), path, expected)


@pytest.mark.parametrize(("fixture", "expected"), ALLOWLIST_FIXTURES, ids=[f for f, _ in ALLOWLIST_FIXTURES])
def test_broken_allowlist_names_file_and_fields(fixture: str, expected: list[str]) -> None:
    path = FIXTURES / fixture
    _assert_named(_problems(allowlist=path), path, expected)


def test_problems_of_both_files_are_reported_at_once() -> None:
    rule, allowlist = FIXTURES / "bad_lists.toml", FIXTURES / "bad_allowlist.toml"
    problems = _problems(rule, allowlist)
    _assert_named(problems, rule, ["lists.shells: must list at least one value"])
    _assert_named(problems, allowlist, ["allow[0].parent_args[0]"])


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    _assert_named(_problems(allowlist=path), path, ["cannot read"])


def test_every_fixture_is_exercised() -> None:
    exercised = {name for name, _ in RULE_FIXTURES + ALLOWLIST_FIXTURES}
    assert {p.name for p in FIXTURES.glob("*.toml")} == exercised
