"""Every clause of both stages of the seed rule's compiled query, on typed events, table-driven (DESIGN §1a,
§3.5-3.9); and the clauses an alert explains a match with."""

from __future__ import annotations

from typing import Any

import pytest

from shellwatch.core.stages import MAX_TEXT, MAX_VALUES, stage_clauses
from shellwatch.eql.compile import compile_query
from shellwatch.eql.parse import parse_query
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from tests.unit.builders import MISSING, conn_doc, exec_doc, net, proc

RULE = load_reverse_shell_rule()

NETWORK_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("baseline public v4", {}, True),
    # host.os.type == "linux": case-sensitive, any element of an array
    ("os Linux", {"host__os__type": "Linux"}, False),
    ("os windows", {"host__os__type": "windows"}, False),
    ("os missing", {"host__os__type": MISSING}, False),
    ("os array with linux", {"host__os__type": ["windows", "linux"]}, True),
    # event.action in (...): case-sensitive
    ("accepted", {"event__action": "connection_accepted"}, True),
    ("Connection_Attempted", {"event__action": "Connection_Attempted"}, False),
    ("disconnect", {"event__action": "disconnect_received"}, False),
    ("action missing", {"event__action": MISSING}, False),
    ("action array", {"event__action": ["x", "connection_attempted"]}, True),
    # process.executable : (...) case-insensitive wildcard
    ("/usr/bin/java", {"process__executable": "/usr/bin/java"}, True),
    ("/USR/BIN/JAVA", {"process__executable": "/USR/BIN/JAVA"}, True),
    ("/bin/java", {"process__executable": "/bin/java"}, True),
    ("/usr/lib/JVM/x", {"process__executable": "/usr/lib/JVM/x"}, True),
    ("/usr/lib/jvm/ (empty star)", {"process__executable": "/usr/lib/jvm/"}, True),
    ("javac under jvm", {"process__executable": "/usr/lib/jvm/java-17/bin/javac"}, True),
    ("/usr/java/jdk/bin/java", {"process__executable": "/usr/java/jdk/bin/java"}, True),
    ("/usr/lib/jvm no slash", {"process__executable": "/usr/lib/jvm"}, False),
    ("/usr/java no slash", {"process__executable": "/usr/java"}, False),
    ("/usr/bin/javac", {"process__executable": "/usr/bin/javac"}, False),
    ("/opt/java/bin/java", {"process__executable": "/opt/java/bin/java"}, False),
    ("/usr/local/bin/java", {"process__executable": "/usr/local/bin/java"}, False),
    ("long s is not s", {"process__executable": "/u\u017fr/bin/java"}, False),
    ("exe missing", {"process__executable": MISSING}, False),
    # destination.ip
    ("ip missing", {"destination__ip": MISSING}, False),
    ("ip null", {"destination__ip": None}, False),
    ("ip []", {"destination__ip": []}, False),
    ("0.0.0.0", {"destination__ip": "0.0.0.0"}, False),
    ("0.0.0.1 is public", {"destination__ip": "0.0.0.1"}, True),
    ("10.255.255.255", {"destination__ip": "10.255.255.255"}, False),
    ("11.0.0.0", {"destination__ip": "11.0.0.0"}, True),
    ("9.255.255.255", {"destination__ip": "9.255.255.255"}, True),
    ("127.1.2.3", {"destination__ip": "127.1.2.3"}, False),
    ("169.254.1.1", {"destination__ip": "169.254.1.1"}, False),
    ("172.15.255.255", {"destination__ip": "172.15.255.255"}, True),
    ("172.16.0.0", {"destination__ip": "172.16.0.0"}, False),
    ("172.31.255.255", {"destination__ip": "172.31.255.255"}, False),
    ("172.32.0.0", {"destination__ip": "172.32.0.0"}, True),
    ("192.0.0.255", {"destination__ip": "192.0.0.255"}, False),
    ("192.0.1.0", {"destination__ip": "192.0.1.0"}, True),
    ("192.0.2.1", {"destination__ip": "192.0.2.1"}, False),
    ("192.31.196.1", {"destination__ip": "192.31.196.1"}, False),
    ("192.52.193.1", {"destination__ip": "192.52.193.1"}, False),
    ("192.168.255.255", {"destination__ip": "192.168.255.255"}, False),
    ("192.169.0.0", {"destination__ip": "192.169.0.0"}, True),
    ("192.88.99.1", {"destination__ip": "192.88.99.1"}, False),
    ("224.0.0.1", {"destination__ip": "224.0.0.1"}, False),
    ("239.255.255.255", {"destination__ip": "239.255.255.255"}, False),
    ("223.255.255.255", {"destination__ip": "223.255.255.255"}, True),
    ("100.63.255.255", {"destination__ip": "100.63.255.255"}, True),
    ("100.64.0.0", {"destination__ip": "100.64.0.0"}, False),
    ("100.127.255.255", {"destination__ip": "100.127.255.255"}, False),
    ("100.128.0.0", {"destination__ip": "100.128.0.0"}, True),
    ("192.175.48.9", {"destination__ip": "192.175.48.9"}, False),
    ("198.18.0.0", {"destination__ip": "198.18.0.0"}, False),
    ("198.19.255.255", {"destination__ip": "198.19.255.255"}, False),
    ("198.20.0.0", {"destination__ip": "198.20.0.0"}, True),
    ("198.51.100.7", {"destination__ip": "198.51.100.7"}, False),
    ("203.0.113.7", {"destination__ip": "203.0.113.7"}, False),
    ("203.0.114.7", {"destination__ip": "203.0.114.7"}, True),
    ("240.0.0.1", {"destination__ip": "240.0.0.1"}, False),
    ("255.255.255.255", {"destination__ip": "255.255.255.255"}, False),
    ("v6 public", {"destination__ip": "2607:f8b0:4004:800::200e"}, True),
    ("v6 ::1", {"destination__ip": "::1"}, False),
    ("v6 ::1 long form", {"destination__ip": "0:0:0:0:0:0:0:1"}, False),
    ("v6 :: is public", {"destination__ip": "::"}, True),
    ("v6 ::2 is public", {"destination__ip": "::2"}, True),
    ("fe80::1", {"destination__ip": "fe80::1"}, False),
    ("FEBF::1", {"destination__ip": "FEBF::1"}, False),
    ("fec0::1 public", {"destination__ip": "fec0::1"}, True),
    ("ff02::1", {"destination__ip": "ff02::1"}, False),
    ("2001:db8::1 public", {"destination__ip": "2001:db8::1"}, True),
    ("64:ff9b::1 public", {"destination__ip": "64:ff9b::1"}, True),
    ("v4-mapped private", {"destination__ip": "::ffff:10.1.2.3"}, False),
    ("v4-mapped public", {"destination__ip": "::ffff:8.8.8.8"}, True),
    ("v4-mapped 0.0.0.0", {"destination__ip": "::ffff:0.0.0.0"}, False),
    ("not an ip", {"destination__ip": "evil.example"}, False),
    ("leading zeros", {"destination__ip": "010.1.2.3"}, False),
    ("with port", {"destination__ip": "8.8.8.8:53"}, False),
    ("cidr text", {"destination__ip": "8.8.8.0/24"}, False),
    ("padded", {"destination__ip": " 8.8.8.8"}, False),
    ("number", {"destination__ip": 134744072}, False),
    ("array public+private", {"destination__ip": ["8.8.8.8", "10.0.0.1"]}, False),
    ("array public+junk", {"destination__ip": ["8.8.8.8", "junk"]}, True),
    ("array all public", {"destination__ip": ["8.8.8.8", "1.1.1.1"]}, True),
]


@pytest.mark.parametrize(("overrides", "holds"), [c[1:] for c in NETWORK_CASES], ids=[c[0] for c in NETWORK_CASES])
def test_network_stage(overrides: dict[str, Any], holds: bool) -> None:
    event = net(conn_doc(**overrides))
    assert (stage_clauses(RULE.network, event) is not None) is holds


JAR = ["/usr/lib/jvm/java-17/bin/java", "-jar", "/opt/app/app.jar"]
PROCESS_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("baseline", {}, True),
    ("os Linux", {"host__os__type": "Linux"}, False),
    ("os missing", {"host__os__type": MISSING}, False),
    ("action Exec", {"event__action": "Exec"}, False),
    ("action fork", {"event__action": "fork"}, False),
    ("action missing", {"event__action": MISSING}, False),
    ("parent /usr/bin/java", {"process__parent__executable": "/usr/bin/java"}, True),
    ("parent /BIN/JAVA", {"process__parent__executable": "/BIN/JAVA"}, True),
    ("parent /usr/java/x", {"process__parent__executable": "/usr/java/x"}, True),
    ("parent /tmp/java", {"process__parent__executable": "/tmp/java"}, False),
    ("parent missing", {"process__parent__executable": MISSING}, False),
    ("-JAR", {"process__parent__args": ["/usr/bin/java", "-JAR", "x.jar"]}, True),
    ("--jar", {"process__parent__args": ["/usr/bin/java", "--jar", "x.jar"]}, False),
    ("-jarx", {"process__parent__args": ["/usr/bin/java", "-jarx"]}, False),
    ("' -jar'", {"process__parent__args": ["/usr/bin/java", " -jar"]}, False),
    ("one string", {"process__parent__args": "java -jar x.jar"}, False),
    ("scalar -jar", {"process__parent__args": "-jar"}, True),
    ("args missing", {"process__parent__args": MISSING}, False),
    ("args []", {"process__parent__args": []}, False),
    ("no -jar (-cp)", {"process__parent__args": ["/usr/bin/java", "-cp", "x", "Main"]}, False),
    ("jenkins.war excluded", {"process__parent__args": [*JAR[:2], "/usr/share/java/jenkins.war"]}, False),
    ("jenkins lib excluded", {"process__parent__args": [*JAR[:2], "/usr/lib/jenkins/jenkins.war"]}, False),
    ("remoteiot excluded", {"process__parent__args": [*JAR[:2], "/etc/remote-iot/services/remoteiot.jar"]}, False),
    ("NetExtender excluded", {"process__parent__args": [*JAR[:2], "/usr/lib64/NetExtender.jar"]}, False),
    ("netextender lowercase not excluded", {"process__parent__args": [*JAR[:2], "/usr/lib64/netextender.jar"]}, True),
    ("excluded path first", {"process__parent__args": ["/usr/share/java/jenkins.war", "-jar"]}, False),
    ("excluded path as prefix only", {"process__parent__args": [*JAR[:2], "/usr/share/java/jenkins.war.bak"]}, True),
    ("long arg is matched", {"process__parent__args": [*JAR[:2], "/opt/" + "a" * 2000 + ".jar"]}, True),
    ("name sh", {"process__name": "sh"}, True),
    ("name dash", {"process__name": "dash"}, True),
    ("name fish", {"process__name": "fish"}, True),
    ("name Bash", {"process__name": "Bash"}, False),
    ("name busybox", {"process__name": "busybox"}, False),
    ("name python", {"process__name": "python3"}, False),
    ("name missing", {"process__name": MISSING}, False),
    ("name array", {"process__name": ["x", "zsh"]}, True),
]


@pytest.mark.parametrize(("overrides", "holds"), [c[1:] for c in PROCESS_CASES], ids=[c[0] for c in PROCESS_CASES])
def test_process_stage(overrides: dict[str, Any], holds: bool) -> None:
    event = proc(exec_doc(**{"process__parent__args": JAR, **overrides}))
    assert (stage_clauses(RULE.process, event) is not None) is holds


def test_clauses_name_each_field_the_stage_reads_with_the_events_values() -> None:
    clauses = stage_clauses(RULE.network, net(conn_doc(ip="::ffff:8.8.8.8")))
    assert clauses == (
        'host.os.type = "linux"',
        'event.action = "connection_attempted"',
        'process.executable = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"',
        'destination.ip = "::ffff:8.8.8.8"',  # as received
    )
    clauses = stage_clauses(RULE.process, proc(exec_doc(process__parent__args=["java", "-JAR", "\u00e9.jar"])))
    assert clauses is not None
    assert clauses[3:] == ('process.parent.args = ["java","-JAR","\u00e9.jar"]', 'process.name = "bash"')


def test_clauses_are_bounded_and_say_what_they_left_out() -> None:
    args = ["/usr/bin/java", "-jar", "x" * (MAX_TEXT + 44), *["a"] * 20]
    clauses = stage_clauses(RULE.process, proc(exec_doc(process__parent__args=args)))
    assert clauses is not None
    shown = clauses[3]
    assert shown.startswith('process.parent.args = ["/usr/bin/java","-jar","xxx')
    assert f'{"x" * MAX_TEXT}...(+44 characters)","a"' in shown
    assert shown.endswith(f'"a",...(+{len(args) - MAX_VALUES} values)]')


def test_a_field_without_value_is_null() -> None:
    query = 'process where process.name == "bash" and not process.args in ("-x")'
    (stage,) = compile_query(parse_query(query)).stages
    assert stage_clauses(stage, proc(exec_doc(process__args=MISSING))) == (
        'process.name = "bash"',
        "process.args = null",
    )
