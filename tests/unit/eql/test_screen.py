"""The pre-filter's patterns derived from a query (``shellwatch.eql.screen``): which conjunct each stage gives,
and that a screen built from them never rejects a record its stage accepts."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.ecs.fields import as_keyword, flatten
from shellwatch.eql.compile import compile_query
from shellwatch.eql.parse import parse_query
from shellwatch.eql.screen import query_screen
from shellwatch.match.comparisons import compile_wildcards, screen_needle
from shellwatch.rules.eql_rule import load_eql_rules
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from tests.unit.builders import encode_with_escapes
from tests.unit.eql.test_differential_sequences import stage_pools

VENDORED = Path(__file__).parents[2] / "rules" / "elastic"
JAVA = ("/usr/bin/java", "/bin/java", "/usr/lib/jvm/*", "/usr/java/*")


def test_the_seed_rule_screens_on_its_java_executables() -> None:
    rule = load_reverse_shell_rule()
    screen = query_screen(rule.compiled.query)
    assert [(s.fields, s.patterns, s.reason) for s in screen.stages] == [
        (("process.executable",), JAVA, None),
        (("process.parent.executable",), JAVA, None),
    ]
    assert screen.patterns == JAVA and screen.reason is None
    # the needles the hand-written lists gave before the query became the rule's only definition
    assert ByteScreen.from_patterns(screen.patterns).needles == (b"/bin/java", b"/usr/java/", b"/usr/lib/jvm/")


CHOICES: list[tuple[str, str | None, tuple[str, ...] | None]] = [
    # (condition, field chosen or None, patterns)
    ('process.name : "bash"', "process.name", ("bash",)),
    ('process.name like "bash"', "process.name", ("bash",)),
    ('process.name like~ "ba?h*"', "process.name", ("ba?h*",)),
    ('process.name == "bash"', "process.name", ("bash",)),
    ('"bash" == process.name', "process.name", ("bash",)),
    ('process.name in ("bash", "sh", null)', "process.name", ("bash", "sh")),
    ('process.name in~ ("bash", "sh")', "process.name", ("bash", "sh")),
    # enumeration fields only when nothing else is there
    ('event.action == "exec" and process.name == "sh"', "process.name", ("sh",)),
    ('host.os.type == "linux" and event.type == "start"', "host.os.type", ("linux",)),
    ('file.type == "directory" and process.name : "xy"', "process.name", ("xy",)),
    ('event.action == "connection_attempted"', "event.action", ("connection_attempted",)),
    # then the longest shortest needle; the first on a tie
    ('process.name in ("sh", "bash") and process.parent.name == "java"', "process.parent.name", ("java",)),
    ('process.name == "java" and process.parent.name == "node"', "process.name", ("java",)),
    ('user.name : "*"  and process.name == "ab"', "process.name", ("ab",)),
    # or: every branch must give patterns; an and inside gives its chosen conjunct's
    ('(process.name == "curl" or process.args : "*wget*")', "process.name", ("curl", "*wget*")),
    ('(process.name == "curl" and process.pid > 3) or file.path : "/tmp/*"', "process.name", ("curl", "/tmp/*")),
    ('(process.name == "curl" or process.pid > 3) and user.id == "root"', "user.id", ("root",)),
    # refused: negations, ip fields, numbers and booleans, only wildcards, no field
    ('not process.name == "bash"', None, None),
    ('destination.ip == "1.2.3.4"', None, None),
    ('process.pid == "1234"', None, None),
    ('process.name == "1.5e3"', None, None),
    ('process.name : "true"', None, None),
    ('process.name in ("bash", 12)', None, None),
    ('process.name : "*"', None, None),
    ('process.name : ("bash", "*")', None, None),
    ("length(process.name) == 4 and process.pid > 4", None, None),
    ('startsWith(process.name, "bash")', None, None),
    ('process.name : "\\u{e9}\\u{e8}"', None, None),
]


@pytest.mark.parametrize(("condition", "field", "patterns"), CHOICES, ids=[c[0] for c in CHOICES])
def test_the_conjunct_each_stage_gives(condition: str, field: str | None, patterns: tuple[str, ...] | None) -> None:
    (stage,) = query_screen(parse_query(f"process where {condition}")).stages
    if field is None:
        assert stage.patterns == () and stage.reason is not None
        assert stage.reason.startswith("stage 1 (process): ") and "accepts every record" in stage.reason
    else:
        assert (stage.fields[0], stage.patterns, stage.reason) == (field, patterns, None)


def test_a_stage_without_screen_turns_the_query_screen_off() -> None:
    query = parse_query('sequence by host.id [process where process.name == "bash"] [network where true]')
    screen = query_screen(query)
    assert screen.patterns is None
    assert screen.reason is not None and screen.reason.startswith("stage 2 (network): ")
    assert ByteScreen.from_patterns(()).needles == ()  # no pattern at all rejects everything: callers check None


def _spellings(doc: dict[str, Any], rng: random.Random) -> list[bytes]:
    plain = orjson.dumps(doc)
    choices = [rng.randrange(3) for _ in range(rng.randint(1, 6))]
    dotted = orjson.dumps(flatten(doc))  # {"process.parent.args": [...]}: other shippers' form
    return [plain, encode_with_escapes(doc, choices).encode(), encode_with_escapes(doc, [1]).encode(), dotted]


def _rules() -> list[Any]:
    rules = list(load_eql_rules([VENDORED]).rules)
    seed = load_reverse_shell_rule()
    return [*rules, seed]


@pytest.mark.slow
def test_a_stage_screen_never_rejects_a_document_its_stage_accepts() -> None:
    """Documents generated to satisfy each stage of the vendored rules and the seed rule, in several JSON
    spellings (\\u escapes, escaped slashes, dotted keys), pass the screen built from that stage's patterns."""
    rng = random.Random(24)
    screened_stages, accepted = 0, 0
    for rule in _rules():
        compiled = rule.compiled
        screen = query_screen(compiled.query)
        pools = stage_pools(compiled, compiled.query, rng, tries=600)
        for index, (stage, pool) in enumerate(zip(screen.stages, pools, strict=True)):
            if not stage.patterns:
                continue
            screened_stages += 1
            byte_screen = ByteScreen.from_patterns(stage.patterns)
            for doc in pool.matching:
                assert compiled.stages[index].predicate(compiled.flatten(doc))
                raws = _spellings(doc, rng)
                for raw in raws:
                    assert byte_screen.accepts(raw), (rule.name, index, raw)
                assert byte_screen.accepted(raws) == list(range(len(raws)))
                accepted += 1
    print(f"\nscreens: {screened_stages} stages, {accepted} matching documents accepted")
    assert screened_stages >= 50 and accepted >= 1500


def test_needles_are_text_a_record_spells_verbatim() -> None:
    assert screen_needle("/usr/lib/jvm/*") == "/usr/lib/jvm/"
    assert screen_needle('C:\\Windows\\*"x') == "windows"  # backslashes and quotes are escaped in JSON
    assert screen_needle("/usr/lib/jvm/\u00e9/bin") == "/usr/lib/jvm/"  # non-ASCII may be \u-escaped
    assert screen_needle("169.254.169.254") is None  # only a number's characters
    assert screen_needle("10.0.0.1/bin") == "10.0.0.1/bin"
    assert screen_needle("*?*") is None
    # a pattern no number or boolean can match keeps its needle, whatever its letters ("lua" is spelt with letters
    # of "false" and "true", but neither starts with it)
    assert screen_needle("lua*") == "lua"
    assert screen_needle("123*abc") == "123"  # only a string can match it, and a string's text is in the record
    for readable in ("*ue", "FALSE", "inf*", "*nan", "-inf", "1e*", "?.5"):  # a boolean's or number's reading
        assert screen_needle(readable) is None, readable


# A value the stage accepts but whose text in the record differs from the text the comparison reads.
SPELLED_OTHERWISE: list[tuple[str, str]] = [
    ('process.pid == "100"', '{"process": {"pid": 1E2}}'),
    ('process.pid in ("100", "200")', '{"process": {"pid": 100.0}}'),
    ('process.title : "1.5*"', '{"process": {"title": 15e-1}}'),
    ('process.title like~ "1*"', '{"process": {"title": 1.0e0}}'),
    ('process.title == "true"', '{"process": {"title": true}}'),
    ('destination.ip == "::1"', '{"destination": {"ip": "0:0:0:0:0:0:0:1"}}'),
    ('destination.ip in ("10.0.0.1", "::ffff:a00:2")', '{"destination": {"ip": "::FFFF:10.0.0.2"}}'),
    ('process.title : "a\\\\b*"', '{"process": {"title": "A\\\\B c"}}'),
    ('process.title : "*\\u{e9}t\\u{e9}*"', '{"process": {"title": "\\u00c9T\\u00c9"}}'),
]


@pytest.mark.parametrize(("condition", "raw"), SPELLED_OTHERWISE, ids=[c for c, _ in SPELLED_OTHERWISE])
def test_values_spelled_otherwise_in_the_record_still_pass(condition: str, raw: str) -> None:
    query = parse_query(f"process where {condition}")
    (stage,) = compile_query(query).stages
    record = '{"event": {"category": ["process"]}, ' + raw[1:]
    assert stage.predicate(flatten(orjson.loads(record))), "the stage accepts the document"
    patterns = query_screen(query).patterns
    assert patterns is None or ByteScreen.from_patterns(patterns).accepts(record.encode())


_VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from([*"truefalsinlua0123456789.e+-xE"]), max_size=8),
)


@given(_VALUES, st.data())
def test_a_value_a_pattern_matches_holds_its_needle_in_any_spelling(value: object, data: st.DataObject) -> None:
    """Whatever a value matching a pattern is (a string, a number or a boolean, as keyword comparisons read it):
    a number or a boolean may be spelt otherwise in the record (``1E2``; Avro's binary), so then there is no needle;
    a string's JSON text holds the needle. The pattern is the value's text with characters turned into ``*``,
    ``?`` or the other case, so it matches."""
    keyword = as_keyword(value)
    assert keyword is not None
    edits = data.draw(
        st.lists(st.sampled_from(["keep", "keep", "*", "?", "case"]), min_size=len(keyword), max_size=len(keyword))
    )
    pattern = (
        "".join(c if e == "keep" else c.swapcase() if e == "case" else e for c, e in zip(keyword, edits, strict=True))
        or "*"
    )
    assert compile_wildcards([pattern]).matches_one(keyword)
    needle = screen_needle(pattern)
    if not isinstance(value, str):
        assert needle is None, (pattern, value)
    elif needle is not None:
        assert needle in orjson.dumps({"f": value}).decode().lower()
