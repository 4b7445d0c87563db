"""The pre-filter never drops a record a rule could match (DESIGN §4), whatever its JSON spelling."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.core.stages import stage_clauses
from shellwatch.ecs.events import NetworkEvent, ProcessEvent
from shellwatch.formats.event_codec import Decoded, decode_json_event
from shellwatch.rules.loader import shipped_rule_path
from shellwatch.rules.reverse_shell_rule import REVERSE_SHELL_RULE_FILE, load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.tools.detect import run_detect
from tests.unit.builders import conn_doc, encode_with_escapes, exec_doc

RULE = load_reverse_shell_rule()
PREFILTER = Pipeline(RULE, PipelineConfig()).prefilter


JAVA_PATHS = st.sampled_from(
    [
        "/usr/bin/java",
        "/bin/java",
        "/usr/lib/jvm/",
        "/usr/lib/jvm/jdk-21/bin/java",
        "/usr/java/x",
        "/usr/lib/jvm/\u00e9",
    ]
)


@st.composite
def case_variant(draw: st.DrawFn, path: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(path), max_size=len(path)))
    return "".join(c.upper() if f else c for c, f in zip(path, flips, strict=True))


@settings(max_examples=500, deadline=None)
@given(
    java=JAVA_PATHS.flatmap(case_variant),
    choices=st.lists(st.integers(0, 2), min_size=1, max_size=7),
    network=st.booleans(),
    dotted=st.booleans(),
)
def test_never_drops_a_matching_record(java: str, choices: list[int], network: bool, dotted: bool) -> None:
    if network:
        doc = conn_doc(process__executable=java)
        if dotted:
            doc["process.executable"] = doc["process"].pop("executable")
    else:
        doc = exec_doc(process__parent__executable=java)
        if dotted:
            doc["process.parent.executable"] = doc["process"]["parent"].pop("executable")
    raw = encode_with_escapes(doc, choices).encode()
    decoded = decode_json_event(raw)
    assert isinstance(decoded, Decoded)
    (event,) = decoded.events
    if isinstance(event, NetworkEvent):
        holds = stage_clauses(RULE.network, event) is not None
    else:
        assert isinstance(event, ProcessEvent)
        holds = stage_clauses(RULE.process, event) is not None
    assert holds  # the generator only builds matching records...
    assert PREFILTER.accepts(raw)  # ...and the filter must let every one of them through


def test_drops_records_without_java() -> None:
    assert not PREFILTER.accepts(json.dumps(conn_doc(process__executable="/usr/sbin/nginx")).encode())
    windows = {"event": {"category": ["process"]}, "process": {"executable": "C:\\\\Windows\\\\java.exe"}}
    assert not PREFILTER.accepts(json.dumps(windows).encode())
    assert not PREFILTER.accepts(b'{"path": "C:\\\\users\\\\x"}')  # an escaped backslash, not \\u


def test_escapes_that_hide_java_are_decoded() -> None:
    assert PREFILTER.accepts(b'{"process": {"executable": "\\/usr\\/bin\\/java"}}')
    assert PREFILTER.accepts(b'{"process": {"executable": "/usr/bin/\\u006aava"}}')
    assert PREFILTER.accepts(b'{"broken": "\\u006a')  # undecodable: passed on so it is reported


def test_needles_follow_the_loaded_patterns() -> None:
    assert ByteScreen.from_patterns(["/opt/zulu*/bin/java", "/usr/lib/jvm/*"]).needles == (
        b"/opt/zulu",
        b"/usr/lib/jvm/",
    )
    assert ByteScreen.from_patterns(["*"]).needles is None
    assert ByteScreen.from_patterns(["/usr/bin/java"], enabled=False).accepts(b"anything")


FRAGMENTS = st.sampled_from(
    [
        b"",
        b"ja",
        b"va",
        b"JAVA",
        b"/usr/lib/",
        b"jvm/",
        b"jSpawnHelper",
        b"\\u006a",
        b"ava",
        b"\\/",
        b"\\\\u",
        b"x",
        b'"',
        b"\n",  # the batch check's own separator, inside a record
        b"\\U",  # lower-cases to an introducer
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(FRAGMENTS, max_size=6).map(b"".join), max_size=12))
def test_batch_check_agrees_with_the_record_check(raws: list[bytes]) -> None:
    # Fragments that join into a needle across two records must not count for either of them.
    assert PREFILTER.accepted(raws) == [i for i, raw in enumerate(raws) if PREFILTER.accepts(raw)]


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([b"a", b"B", b"c", b"d", b"/", b"\\", b"u", b"\n", b""]), max_size=8).map(b"".join),
        max_size=10,
    )
)
def test_overlapping_needles_agree_with_the_record_check(raws: list[bytes]) -> None:
    # one needle's end is another's start: a match of one must not hide a record's match of the other
    screen = ByteScreen((b"abc", b"bcd", b"cd/"))
    assert screen.accepted(raws) == [i for i, raw in enumerate(raws) if screen.accepts(raw)]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(FRAGMENTS, max_size=6).map(b"".join), max_size=12))
def test_lines_screened_in_place_agree_with_the_record_check(raws: list[bytes]) -> None:
    text = b"".join(raw.replace(b"\n", b" ") + b"\n" for raw in raws)
    lines = text.split(b"\n")  # the last one: what follows the last line feed (empty)
    expected = [line for line in lines if PREFILTER.accepts(line)]
    assert [text[start:end] for start, end in PREFILTER.accepted_lines(text)] == expected
    without_last_end = text.removesuffix(b"\n")
    assert [without_last_end[start:end] for start, end in PREFILTER.accepted_lines(without_last_end)] == expected


def test_a_batch_of_many_chunks_agrees_with_the_record_check() -> None:
    # more records than one pass screens (the batch is cut into chunks): indices stay the batch's own
    rng = random.Random(5)
    pieces = [b"ja", b"va", b"JAVA", b"/usr/lib/", b"jvm/", b"\\u006a", b"ava", b"x", b"", b"jspawnhelper"]
    raws = [b"".join(rng.choice(pieces) for _ in range(rng.randrange(6))) for _ in range(1_700)]
    expected = [i for i, raw in enumerate(raws) if PREFILTER.accepts(raw)]
    assert 100 < len(expected) < 1_600
    assert PREFILTER.accepted(raws) == expected


def test_batch_check_finds_a_needle_only_inside_one_record() -> None:
    assert PREFILTER.accepted([b"xx ja", b"va yy", b"", b"/usr/BIN/JAVA", b"\\u006aava"]) == [3, 4]
    assert ByteScreen.from_patterns(["*"]).accepted([b"a", b""]) == [0, 1]


def test_the_pipeline_screens_on_the_query_and_the_shell_lists() -> None:
    assert (PREFILTER.needles, Pipeline(RULE, PipelineConfig()).prefilter_off_reason) == (
        (b"/bin/java", b"/usr/java/", b"/usr/lib/jvm/"),
        None,
    )
    with_shell = Pipeline(RULE, PipelineConfig(), load_shell_rule())
    assert with_shell.prefilter.needles == (b"/usr/lib/jvm/", b"java", b"jspawnhelper")


SCREENLESS = """sequence by host.id with maxspan=5s
[network where host.os.type == "linux" or destination.port == 4444] by process.entity_id
[process where process.parent.executable : "/opt/app/*"] by process.parent.entity_id"""


def test_a_stage_without_screen_turns_the_prefilter_off_and_says_why(tmp_path: Path) -> None:
    shipped = shipped_rule_path(REVERSE_SHELL_RULE_FILE).read_text()
    start, end = shipped.index("query = '''") + len("query = '''\n"), shipped.index("\n'''\n")
    path = tmp_path / "rule.toml"
    path.write_text(shipped[:start] + SCREENLESS + shipped[end:])
    pipeline = Pipeline(load_reverse_shell_rule(path), PipelineConfig())
    assert pipeline.prefilter.needles is None and pipeline.prefilter.accepts(b"{}")
    reason = pipeline.prefilter_off_reason
    assert reason is not None and reason.startswith("rule potential-reverse-shell-via-java: stage 1 (network): ")
    err = io.StringIO()
    run_detect([b"{}\n"], pipeline, io.BytesIO(), err, lambda: 0)
    assert err.getvalue().startswith(f"shellwatch detect: pre-filter off: {reason}\n")
    assert Pipeline(load_reverse_shell_rule(path), PipelineConfig(prefilter_enabled=False)).prefilter_off_reason is None
