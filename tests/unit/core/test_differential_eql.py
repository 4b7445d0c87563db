"""Differential test: shellwatch's Correlator against Elastic's own Python EQL engine (PyPI ``eql`` 1.0.1).

Both engines see the same generated ECS documents; the sets of (connection ``event.id``, exec ``event.id``)
pairs must be equal. The rule text is the verbatim ``query`` of the shipped rule file, adapted for eql
(``ADAPTATIONS`` below, one comment each) and run by ``eql.PythonEngine`` with eql's global case-insensitivity
switched off (``eql.utils.CASE_INSENSITIVE = False``; eql reads the flag both when it compiles a query and when
it folds values at run time, so it is off for parse, build and stream).

How eql 1.0.1 runs the sequence (read in ``eql/engine.py`` and confirmed by ``test_eql_sequence_semantics``):
``Event.time`` is in the engine's ``time_unit`` ticks per second, so with ``{"time_unit": 1000}`` times are
epoch milliseconds and ``maxspan=5s`` is 5000; a pending sequence is dropped when any later network/process
event is more than maxspan after its first event, so maxspan is inclusive (5000 ms matches, 5001 does not);
a qualifying connection overwrites the pending one of its key (newest replaces older); the exec that completes
a sequence pops it (consumed); events are applied in the order fed. We feed both engines in
(``@timestamp`` ms, connections before execs, arrival) order, which is the order DESIGN §3.2 fixes. On all of
these points eql agrees with Elasticsearch as DESIGN §3 describes it, so the generator needs no restriction
for them.

Where eql 1.0.1 differs from Elasticsearch (DESIGN §3), and what this module does about it:

- Null join keys: eql's join key is a plain tuple, so a connection without ``process.entity_id`` pairs with an
  exec without ``process.parent.entity_id`` on the same host; Elasticsearch (§3.1) never joins a missing key.
  The generator always sets ``host.id`` and both entity ids; the documented-behaviour table covers the
  missing-key case.
- ``cidrMatch`` on an IPv4-mapped IPv6 address (``::ffff:10.1.2.3``): eql compares the IPv6 address with the
  IPv4 blocks and finds no match, so the connection qualifies; Elasticsearch stores it as IPv4 10.1.2.3, which
  is excluded (§3.9). Mapped *public* addresses (``::ffff:8.8.8.8``) qualify in both, so only mapped private
  addresses are kept out of the generator.
- A ``destination.ip`` that is not an address (``not-an-ip``, ``""``, ``010.0.0.1``, ``10.0.0.256``): eql's
  ``cidrMatch`` raises ``ValueError`` out of the engine; an address with a zone id (``2607:f8b0::1%eth0``)
  parses in Python, so eql lets a public one through. Elasticsearch treats all of these as missing, so the
  connection does not qualify (§3.9). None of them is generated.
- ``destination.ip`` as an array: eql's ``==`` against a list is null, which makes the whole ``not (...)``
  null, so no array ever qualifies. That agrees with Elasticsearch for ``[]`` (null, §3.8) and for arrays holding
  an excluded address, but not for ``["8.8.8.8"]`` (qualifies in ES). The generator emits scalars, JSON null,
  ``[]`` or an absent field.
- Non-ASCII case folding: the adapted ``:`` is a Python ``(?i:...)`` regex, which also folds e.g. U+017F (long s)
  to ``s``; Elasticsearch (and shellwatch) only fold single-code-point upper/lower forms. The generator uses
  ASCII values only.
- ``process.parent.args`` as a scalar string: ``arraySearch`` only walks lists, so eql sees no element; ES (and
  shellwatch) count a scalar as a one-element array (§3.5). The generator emits arrays or an absent field.

The inputs that differ are asserted against shellwatch's documented behaviour in a short explicit table
(``test_shellwatch_documented_behaviour``).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import eql
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shellwatch.core.correlate import Correlator
from shellwatch.ecs.events import NetworkEvent, ProcessEvent
from shellwatch.formats.event_codec import Decoded, decode_json_event
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.samples import ecs_factory
from tests.unit.builders import bundled

RULE = load_reverse_shell_rule()
T0 = 1_700_000_000_000
Pair = tuple[str | None, str | None]


# --------------------------------------------------------------------------------------------------
# The rule, adapted for eql 1.0.1
# --------------------------------------------------------------------------------------------------

JAVA_PATTERNS = ("/usr/bin/java", "/bin/java", "/usr/lib/jvm/*", "/usr/java/*")
_JAVA_LIST = "(" + ", ".join(f'"{p}"' for p in JAVA_PATTERNS) + ")"


def _es_wildcard(field: str, patterns: Sequence[str]) -> str:
    """Elasticsearch's ``field : (patterns)`` as an eql ``match``: the whole value (``\\Z``; eql's ``match``
    anchors only the start), case-insensitive (``(?i:``), ``*`` any run (eql compiles with DOTALL).
    A triple-quoted eql string keeps backslashes as they are."""
    body = "|".join(".*".join(re.escape(piece) for piece in p.split("*")) for p in patterns)
    return f'match({field}, """(?i:{body})\\Z""")'


ADAPTATIONS: tuple[tuple[str, str], ...] = (
    # 1. eql registers the function as `cidrMatch` and looks names up case-sensitively ("Unknown function
    #    cidrmatch"); Elasticsearch accepts `cidrmatch`.
    ("cidrmatch(", "cidrMatch("),
    # 2. eql's cidrMatch accepts CIDR blocks only ("Invalid argument to cidrMatch" for a bare address);
    #    Elasticsearch reads "::1" as the single address ::1/128.
    ('"::1",', '"::1/128",'),
    # 3. With CASE_INSENSITIVE off (needed so that ==, in and the join keys are case-sensitive, as in ES),
    #    eql's `:` becomes case-sensitive; Elasticsearch's `:` is case-insensitive. Anchored (?i:) regex.
    (f"process.executable : {_JAVA_LIST}", _es_wildcard("process.executable", JAVA_PATTERNS)),
    # 4. Same for the parent executable of the exec.
    (f"process.parent.executable : {_JAVA_LIST}", _es_wildcard("process.parent.executable", JAVA_PATTERNS)),
    # 5. eql's `:` on an array field returns null (never true); Elasticsearch holds when any element matches.
    ('process.parent.args : "-jar"', f"arraySearch(process.parent.args, a, {_es_wildcard('a', ['-jar'])})"),
    # 6. eql's `in` on an array raises TypeError (unhashable list), and on an absent field is null, so
    #    `not ... in` fails; Elasticsearch holds iff no element is listed, and when the field is absent.
    #    `arraySearch` of an absent field is false, so `not arraySearch(...)` holds then.
    ("not process.parent.args in (", "not arraySearch(process.parent.args, a, a in ("),
    # 6b. ...closing the arraySearch opened by 6.
    (")] by process.parent.entity_id", "))] by process.parent.entity_id"),
)


def _adapt(query: str) -> str:
    for old, new in ADAPTATIONS:
        assert query.count(old) == 1, f"verbatim rule text changed: {old!r} occurs {query.count(old)} times"
        query = query.replace(old, new)
    return query


ADAPTED_QUERY = _adapt(RULE.query)


@contextlib.contextmanager
def _eql_case_sensitive() -> Iterator[None]:
    previous = eql.utils.CASE_INSENSITIVE
    eql.utils.CASE_INSENSITIVE = False
    try:
        yield
    finally:
        eql.utils.CASE_INSENSITIVE = previous


@functools.cache
def _parsed_query() -> Any:
    # The Elasticsearch dialect of eql's parser: the rule is written in it, and the default dialect rejects
    # `:` ("Invalid syntax. Try: wildcard(...)") and the `"""raw"""` strings of the adapted `match` calls.
    with _eql_case_sensitive(), eql.parser.elasticsearch_syntax:
        return eql.parse_query(ADAPTED_QUERY)


# --------------------------------------------------------------------------------------------------
# Events and the two engines
# --------------------------------------------------------------------------------------------------


class _Absent(enum.Enum):
    ABSENT = "absent"


ABSENT = _Absent.ABSENT


@dataclass(frozen=True)
class Ev:
    kind: str  # "network" | "process"
    ts_ms: int  # epoch ms
    event_id: str
    raw: bytes  # the document both engines see

    def order(self, arrival: int) -> tuple[int, int, int]:
        return (self.ts_ms, 0 if self.kind == "network" else 1, arrival)


def conn(
    event_id: str,
    at_ms: int,
    *,
    host: str = "host-a",
    entity: str | None = "jvm-1",
    os_type: str | _Absent = "linux",
    action: str = "connection_attempted",
    executable: str = "/usr/bin/java",
    ip: str | _Absent | list[str] | None = "8.8.8.8",
) -> Ev:
    doc = ecs_factory.connection(
        ts_ms=T0 + at_ms,
        host_id=host,
        pid=4242,
        dest_ip="8.8.8.8",
        event_id=event_id,
        executable=executable,
        action=action,
    )
    if entity is None:
        del doc["process"]["entity_id"]
    else:
        doc["process"]["entity_id"] = entity
    if isinstance(os_type, _Absent):
        del doc["host"]["os"]["type"]
    else:
        doc["host"]["os"]["type"] = os_type
    if isinstance(ip, _Absent):
        del doc["destination"]
    else:
        doc["destination"]["ip"] = ip
    return Ev("network", T0 + at_ms, event_id, orjson.dumps(doc))


def exe(
    event_id: str,
    at_ms: int,
    *,
    host: str = "host-a",
    parent_entity: str | None = "jvm-1",
    os_type: str | _Absent = "linux",
    action: str = "exec",
    parent_executable: str = "/usr/bin/java",
    parent_args: Sequence[str] | str | _Absent = ("/usr/bin/java", "-jar", "/opt/app/app.jar"),
    name: str = "bash",
) -> Ev:
    doc = ecs_factory.execution(
        ts_ms=T0 + at_ms,
        host_id=host,
        pid=777,
        parent_pid=4242,
        event_id=event_id,
        name=name,
        parent_executable=parent_executable,
        parent_args=["placeholder"],
        action=action,
    )
    parent = doc["process"]["parent"]
    if parent_entity is None:
        del parent["entity_id"]
    else:
        parent["entity_id"] = parent_entity
    if isinstance(os_type, _Absent):
        del doc["host"]["os"]["type"]
    else:
        doc["host"]["os"]["type"] = os_type
    if isinstance(parent_args, _Absent):
        for key in ("args", "args_count", "command_line"):
            del parent[key]
    elif isinstance(parent_args, str):  # a scalar where ECS has an array
        parent["args"] = parent["command_line"] = parent_args
        parent["args_count"] = 1
    else:
        parent["args"] = list(parent_args)
        parent["args_count"] = len(parent_args)
        parent["command_line"] = " ".join(parent_args)
    return Ev("process", T0 + at_ms, event_id, orjson.dumps(doc))


def in_event_time_order(events: Sequence[Ev]) -> list[Ev]:
    """(@timestamp ms, connections before execs of the same ms, arrival): DESIGN §3.2."""
    return [ev for _, ev in sorted(enumerate(events), key=lambda item: item[1].order(item[0]))]


def eql_pairs(events: Sequence[Ev]) -> list[Pair]:
    outputs: list[Any] = []
    with _eql_case_sensitive():
        # time_unit = ticks per second: Event.time is epoch ms, so maxspan=5s is 5000 ticks.
        engine = eql.PythonEngine({"time_unit": 1000})
        engine.add_output_hook(outputs.append)
        engine.add_query(_parsed_query())
        engine.stream_events([eql.Event(ev.kind, ev.ts_ms, orjson.loads(ev.raw)) for ev in in_event_time_order(events)])
    pairs: list[Pair] = []
    for output in outputs:
        first, second = output.events
        pairs.append((first.data["event"]["id"], second.data["event"]["id"]))
    return sorted(pairs)


def shellwatch_pairs(events: Sequence[Ev]) -> list[Pair]:
    correlator = Correlator(RULE)
    matches = []
    for ev in in_event_time_order(events):
        decoded = decode_json_event(ev.raw)
        assert isinstance(decoded, Decoded), decoded
        (event,) = bundled(decoded)
        matches.extend(correlator.observe(event))
    matches.extend(correlator.flush())
    for match in matches:
        assert isinstance(match.connection, NetworkEvent) and isinstance(match.execution, ProcessEvent)
    return sorted((m.connection.event_id, m.execution.event_id) for m in matches)


def assert_same(events: Sequence[Ev]) -> list[Pair]:
    expected = eql_pairs(events)
    assert shellwatch_pairs(events) == expected
    return expected


# --------------------------------------------------------------------------------------------------
# The adaptations and eql's sequence semantics, checked (so the oracle is what we think it is)
# --------------------------------------------------------------------------------------------------


def test_eql_cannot_parse_the_verbatim_rule() -> None:
    with pytest.raises(eql.EqlError), _eql_case_sensitive(), eql.parser.elasticsearch_syntax:
        eql.parse_query(RULE.query)
    assert _parsed_query() is not None


def test_eql_sequence_semantics() -> None:
    # Newest connection replaces an older one of the same key: conn 0 s, conn 2 s, exec 6 s.
    assert eql_pairs([conn("c0", 0), conn("c2", 2000), exe("x6", 6000)]) == [("c2", "x6")]
    # Consumed by the exec that completes it: conn 0 s, exec 1 s, exec 2 s -> one.
    assert eql_pairs([conn("c0", 0), exe("x1", 1000), exe("x2", 2000)]) == [("c0", "x1")]
    # conn, exec, conn, exec -> two.
    assert eql_pairs([conn("c0", 0), exe("x1", 1000), conn("c2", 2000), exe("x3", 3000)]) == [
        ("c0", "x1"),
        ("c2", "x3"),
    ]
    # maxspan inclusive, in ms.
    assert eql_pairs([conn("c0", 0), exe("x5", 5000)]) == [("c0", "x5")]
    assert eql_pairs([conn("c0", 0), exe("x5", 5001)]) == []
    # A failing connection does not replace the pending one.
    assert eql_pairs([conn("c0", 0), conn("c1", 1000, ip="10.0.0.1"), exe("x2", 2000)]) == [("c0", "x2")]
    # Join keys are exact (CASE_INSENSITIVE off): JVM-1 is not jvm-1, HOST-A is not host-a.
    assert eql_pairs([conn("c0", 0, entity="JVM-1"), exe("x1", 1000)]) == []
    assert eql_pairs([conn("c0", 0, host="HOST-A"), exe("x1", 1000)]) == []


def test_eql_differences_from_elasticsearch() -> None:
    """The reasons the generator avoids some inputs (module docstring); if eql changes, revisit them."""
    # eql joins missing keys; Elasticsearch never does.
    assert eql_pairs([conn("c0", 0, entity=None), exe("x1", 1000, parent_entity=None)]) == [("c0", "x1")]
    # eql lets an IPv4-mapped private address through; Elasticsearch sees 10.1.2.3 (excluded).
    assert eql_pairs([conn("c0", 0, ip="::ffff:10.1.2.3"), exe("x1", 1000)]) == [("c0", "x1")]
    # eql crashes on a value that is not an address.
    with pytest.raises(ValueError):
        eql_pairs([conn("c0", 0, ip="not-an-ip"), exe("x1", 1000)])
    # eql never lets an array of addresses through, even a public one.
    assert eql_pairs([conn("c0", 0, ip=["8.8.8.8"]), exe("x1", 1000)]) == []
    # eql's arraySearch sees no element in a scalar `process.parent.args`.
    assert eql_pairs([conn("c0", 0), exe("x1", 1000, parent_args="-jar")]) == []


# --------------------------------------------------------------------------------------------------
# Hand-written differential cases, one or more per clause
# --------------------------------------------------------------------------------------------------

JAR_ARGS = ("/usr/bin/java", "-jar", "/opt/app/app.jar")
Fields = dict[str, Any]


def side_by_side(*variants: tuple[Fields, Fields]) -> list[Ev]:
    """One connection at 0 s and one exec at 1 s per variant (connection fields, exec fields), each variant on
    its own JVM, so their outcomes are independent: each is a pair in the result, or not."""
    events: list[Ev] = []
    for index, (conn_fields, exec_fields) in enumerate(variants):
        events.append(conn(f"c{index}", 0, entity=f"jvm-{index}", **conn_fields))
        events.append(exe(f"x{index}", 1000, parent_entity=f"jvm-{index}", **exec_fields))
    return events


HAND_CASES: dict[str, list[Ev]] = {
    "baseline": side_by_side(({}, {})),
    "os_type": side_by_side(({"os_type": "Linux"}, {}), ({}, {"os_type": ABSENT}), ({"os_type": "windows"}, {})),
    "actions": side_by_side(
        ({"action": "connection_accepted"}, {}),
        ({"action": "Connection_Attempted"}, {}),
        ({"action": "disconnect_received"}, {}),
        ({}, {"action": "fork"}),
        ({}, {"action": "Exec"}),
    ),
    "executable_case_and_wildcards": side_by_side(
        ({"executable": "/USR/BIN/JAVA"}, {"parent_executable": "/BIN/JAVA"}),
        ({"executable": "/usr/lib/jvm/"}, {"parent_executable": "/usr/lib/JVM/java-17/bin/javac"}),
        ({"executable": "/usr/java/jdk/bin/java"}, {}),
    ),
    "executable_misses": side_by_side(
        ({"executable": "/usr/lib/jvm"}, {}),
        ({"executable": "/usr/bin/javac"}, {}),
        ({"executable": "/opt/java/bin/java"}, {}),
        ({}, {"parent_executable": "/usr/local/bin/java"}),
        ({}, {"parent_executable": "/usr/lib/jvm"}),
        ({}, {"parent_executable": "/usr/java"}),
    ),
    "ip_null_absent_zero": side_by_side(
        ({"ip": None}, {}), ({"ip": ABSENT}, {}), ({"ip": "0.0.0.0"}, {}), ({"ip": "0.0.0.1"}, {})
    ),
    "ip_v4_boundaries": side_by_side(
        *(
            ({"ip": ip}, {})
            for ip in (
                "10.255.255.255",
                "11.0.0.0",
                "100.63.255.255",
                "100.64.0.0",
                "172.15.255.255",
                "172.16.0.0",
                "172.31.255.255",
                "172.32.0.0",
            )
        )
    ),
    "ip_v6": side_by_side(
        *(
            ({"ip": ip}, {})
            for ip in ("2607:f8b0::1", "::1", "::", "FE80::1", "febf::1", "fec0::1", "ff02::1", "::ffff:8.8.8.8")
        )
    ),
    "args_jar_flag": side_by_side(
        ({}, {"parent_args": ("java", "-JAR", "a.jar")}),
        ({}, {"parent_args": ("--jar", "java -jar x.jar", " -jar", "-jarx")}),
        ({}, {"parent_args": ABSENT}),
        ({}, {"parent_args": ()}),
    ),
    "args_excluded_launchers": side_by_side(
        ({}, {"parent_args": (*JAR_ARGS, "/usr/lib/jenkins/jenkins.war")}),
        ({}, {"parent_args": ("/usr/share/java/jenkins.war", "-jar")}),
        ({}, {"parent_args": ("-jar", "/usr/lib64/netextender.jar")}),
        ({}, {"parent_args": ("-jar", "/usr/lib64/NetExtender.jar")}),
    ),
    "process_name": side_by_side(
        ({}, {"name": "Bash"}), ({}, {"name": "fish"}), ({}, {"name": "busybox"}), ({}, {"name": "python"})
    ),
    "maxspan_inclusive": [conn("c", 0), exe("x", 5000)],
    "maxspan_exceeded": [conn("c", 0), exe("x", 5001)],
    "same_ms_connection_first": [exe("x", 1000), conn("c", 1000)],
    "exec_before_connection": [exe("x", 999), conn("c", 1000)],
    "replace_consume_restart": [
        conn("c0", 0),
        conn("c2", 2000),
        exe("x6", 6000),
        exe("x7", 7000),
        conn("c8", 8000, ip="10.0.0.1"),
        exe("x9", 9000),
    ],
    "expired_then_new": [conn("c0", 0), exe("x6", 6000), conn("c7", 7000), exe("x12", 12_000)],
    "join_key_exact": [
        conn("c", 0, entity="JVM-1"),
        conn("d", 0, host="host-b"),
        conn("e", 0, host="HOST-A", entity="jvm-2"),
        exe("x", 1000),
        exe("y", 1000, host="host-b", parent_entity="jvm-2"),
        exe("z", 1000, parent_entity="jvm-2"),
        exe("w", 1000, host="host-b"),
    ],
}


@pytest.mark.parametrize("events", list(HAND_CASES.values()), ids=list(HAND_CASES))
def test_hand_written_differential(events: list[Ev]) -> None:
    assert_same(events)


def test_hand_written_cases_exercise_both_outcomes() -> None:
    pairs = {name: eql_pairs(events) for name, events in HAND_CASES.items()}
    assert pairs["baseline"] == [("c0", "x0")]
    assert sum(map(len, pairs.values())) >= 15
    assert sum(len(events) // 2 for events in HAND_CASES.values()) - sum(map(len, pairs.values())) >= 15


# --------------------------------------------------------------------------------------------------
# Inputs where eql differs from Elasticsearch: shellwatch's documented behaviour (DESIGN §3.1, 3.8, 3.9)
# --------------------------------------------------------------------------------------------------

DOCUMENTED: list[tuple[str, list[Ev], list[Pair]]] = [
    ("mapped_v4_private_excluded", [conn("c", 0, ip="::ffff:10.1.2.3"), exe("x", 1000)], []),
    ("mapped_v4_loopback_excluded", [conn("c", 0, ip="::ffff:127.0.0.1"), exe("x", 1000)], []),
    ("not_an_ip", [conn("c", 0, ip="not-an-ip"), exe("x", 1000)], []),
    ("empty_string_ip", [conn("c", 0, ip=""), exe("x", 1000)], []),
    ("leading_zero_v4", [conn("c", 0, ip="010.0.0.1"), exe("x", 1000)], []),
    ("zone_id", [conn("c", 0, ip="2607:f8b0::1%eth0"), exe("x", 1000)], []),
    ("public_ip_array", [conn("c", 0, ip=["8.8.8.8"]), exe("x", 1000)], [("c", "x")]),
    ("scalar_parent_args", [conn("c", 0), exe("x", 1000, parent_args="-jar")], [("c", "x")]),
    ("missing_entity_ids", [conn("c", 0, entity=None), exe("x", 1000, parent_entity=None)], []),
]


@pytest.mark.parametrize(("events", "expected"), [(e, p) for _, e, p in DOCUMENTED], ids=[n for n, _, _ in DOCUMENTED])
def test_shellwatch_documented_behaviour(events: list[Ev], expected: list[Pair]) -> None:
    assert shellwatch_pairs(events) == expected


# --------------------------------------------------------------------------------------------------
# Generated differential cases
# --------------------------------------------------------------------------------------------------

HOSTS = ("host-a", "host-b", "HOST-A")
ENTITIES = ("jvm-1", "jvm-2", "JVM-1")
OS_TYPES: tuple[str | _Absent, ...] = ("linux", "Linux", "windows", ABSENT)
ACTIONS = ("connection_attempted", "connection_accepted", "Connection_Attempted", "disconnect_received", "exec", "fork")
JAVA_MATCHING = (
    "/usr/bin/java",
    "/USR/BIN/JAVA",
    "/bin/java",
    "/usr/lib/jvm/x/bin/java",
    "/usr/lib/JVM/x",
    "/usr/lib/jvm/",
    "/usr/lib/jvm/java-17/bin/javac",
    "/usr/java/jdk/bin/java",
)
JAVA_OTHER = (
    "/usr/lib/jvm",
    "/usr/java",
    "/usr/local/bin/java",
    "/opt/java/bin/java",
    "/usr/bin/javac",
    "/usr/bin/java ",
    "/tmp/java",
)
IPS_PUBLIC = (
    "8.8.8.8",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "0.0.0.1",
    "9.255.255.255",
    "192.0.1.0",
    "198.20.0.0",
    "223.255.255.255",
    "2607:f8b0::1",
    "::",
    "fec0::1",
    "2001:db8::1",
    "64:ff9b::1",
    "::ffff:8.8.8.8",
)
IPS_EXCLUDED = (
    "0.0.0.0",
    "10.0.0.0",
    "10.255.255.255",
    "127.0.0.1",
    "169.254.1.1",
    "172.16.0.0",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.0.9",
    "192.0.0.171",
    "192.0.2.5",
    "192.31.196.1",
    "192.52.193.1",
    "192.168.255.255",
    "192.88.99.1",
    "224.0.0.1",
    "239.255.255.255",
    "100.64.0.0",
    "100.127.255.255",
    "192.175.48.1",
    "198.18.0.0",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "0:0:0:0:0:0:0:1",
    "fe80::1",
    "FE80::1",
    "febf::1",
    "ff02::1",
)
IPS_OTHER: tuple[str | _Absent | list[str] | None, ...] = (*IPS_EXCLUDED, None, ABSENT, [])
NAMES = ("bash", "sh", "Bash", "zsh", "fish", "dash", "python", "busybox")
SHELLS = ("bash", "sh", "zsh", "fish", "dash", "ksh")
EXCLUDED_LAUNCHERS = (
    "/usr/share/java/jenkins.war",
    "/etc/remote-iot/services/remoteiot.jar",
    "/usr/lib64/NetExtender.jar",
    "/usr/lib/jenkins/jenkins.war",
)
JAR_FLAGS = ("-jar", "-JAR")
JAR_LOOKALIKES = ("--jar", "-jarx", " -jar", "-ja", "java -jar x.jar")
NEAR_LAUNCHERS = ("/usr/lib64/netextender.jar", "/USR/SHARE/JAVA/JENKINS.WAR", "/usr/lib/jenkins/jenkins.war ")
BENIGN_ARG_TOKENS = ("/usr/bin/java", "-Xmx512m", "/opt/app/app.jar", "-Dfile.encoding=UTF-8")
ARG_TOKENS = (*BENIGN_ARG_TOKENS, *JAR_FLAGS, *JAR_LOOKALIKES, *NEAR_LAUNCHERS, *EXCLUDED_LAUNCHERS)
OFFSETS = (0, 1, 1000, 2000, 3000, 5000, 5001, 6000, 7000, 7001, 10_000, 10_001)


# Clauses with bigger pools of values come up more often.
SEQUENCE_FOCUS = (
    "none",
    "os",
    "action",
    "executable",
    "executable",
    "ip",
    "ip",
    "ip",
    "ip",
    "exec_os",
    "exec_action",
    "parent_executable",
    "parent_executable",
    "jar",
    "launcher",
    "name",
    "join",
)


@dataclass
class _Fields:
    """Draws each field's value: from ``good`` (qualifying values), or from ``every`` (the field's other
    or all values) when the field is perturbed. A lone event perturbs each field independently, one time in
    ``odds``; the two events of a drawn sequence perturb exactly one clause (``focus``, or none), so each
    clause is decided on its own."""

    draw: st.DrawFn
    focus: str | None = None

    def pick(self, clause: str, good: Sequence[Any], every: Sequence[Any], odds: int = 6) -> Any:
        perturbed = clause == self.focus if self.focus is not None else self.draw(st.integers(0, odds - 1)) == 0
        return self.draw(st.sampled_from(every if perturbed else good))


def _parent_args(fields: _Fields) -> tuple[str, ...] | _Absent:
    draw = fields.draw
    if fields.focus is None and draw(st.integers(0, 7)) == 0:  # anything, absent included
        if draw(st.integers(0, 3)) == 0:
            return ABSENT
        return tuple(draw(st.lists(st.sampled_from(ARG_TOKENS), max_size=4)))
    args = draw(st.lists(st.sampled_from(BENIGN_ARG_TOKENS), max_size=3))
    # the `: "-jar"` clause: a flag that matches, or a look-alike that does not
    args.insert(draw(st.integers(0, len(args))), fields.pick("jar", JAR_FLAGS, JAR_FLAGS + JAR_LOOKALIKES))
    # the `not ... in (launchers)` clause: a listed launcher or a near miss, anywhere
    launcher = fields.pick("launcher", [None], (None, *EXCLUDED_LAUNCHERS, *NEAR_LAUNCHERS))
    if launcher is not None:
        args.insert(draw(st.integers(0, len(args))), launcher)
    return tuple(args)


def _connection(fields: _Fields, event_id: str, at: int, host: str, key: str) -> Ev:
    return conn(
        event_id,
        at,
        host=host,
        entity=key,
        os_type=fields.pick("os", ["linux"], OS_TYPES),
        action=fields.pick("action", ["connection_attempted", "connection_accepted"], ACTIONS),
        executable=fields.pick("executable", JAVA_MATCHING, JAVA_OTHER, odds=4),
        ip=fields.pick("ip", IPS_PUBLIC, IPS_OTHER, odds=2),
    )


def _execution(fields: _Fields, event_id: str, at: int, host: str, key: str) -> Ev:
    return exe(
        event_id,
        at,
        host=host,
        parent_entity=key,
        os_type=fields.pick("exec_os", ["linux"], OS_TYPES),
        action=fields.pick("exec_action", ["exec"], ACTIONS),
        parent_executable=fields.pick("parent_executable", JAVA_MATCHING, JAVA_OTHER, odds=4),
        parent_args=_parent_args(fields),
        name=fields.pick("name", SHELLS, NAMES),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> list[Ev]:
    """2-20 events within ~11 s on a few hosts and JVMs: lone connections and execs, and connections
    followed by an exec of the same JVM after a gap around maxspan, with at most one clause perturbed, so that
    sequences, near misses, replacements and consumptions are common."""
    events: list[Ev] = []
    size = draw(st.integers(2, 20))
    while len(events) < size:
        at = draw(st.one_of(st.sampled_from(OFFSETS), st.integers(0, 11_000)))
        lone = _Fields(draw)
        host = lone.pick("host", HOSTS[:1], HOSTS)
        key = lone.pick("key", ENTITIES[:1], ENTITIES)
        shape = draw(st.sampled_from(("connection", "execution", "sequence")))
        if shape == "connection":
            events.append(_connection(lone, f"e{len(events)}", at, host, key))
        elif shape == "execution":
            events.append(_execution(lone, f"e{len(events)}", at, host, key))
        else:
            focused = _Fields(draw, draw(st.sampled_from(SEQUENCE_FOCUS)))
            gap = draw(st.one_of(st.sampled_from((0, 1, 4999, 5000, 5001)), st.integers(0, 6000)))
            events.append(_connection(focused, f"e{len(events)}", at, host, key))
            exec_host = focused.pick("join", [host], HOSTS)
            exec_key = focused.pick("join", [key], ENTITIES)
            events.append(_execution(focused, f"e{len(events)}", at + gap, exec_host, exec_key))
    return events


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_generated_differential(events: list[Ev]) -> None:
    pairs = assert_same(events)
    event(f"pairs: {min(len(pairs), 3)}")
