"""The prefilter stage on a real broker: forwards, dead letters, markers, commits, repartitioning, start-up checks."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError

from shellwatch.core.byte_screen import ByteScreen
from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.formats.event_codec import DecodeReason
from shellwatch.kafka.admin import PartitionMismatchError, create_topic
from shellwatch.kafka.partitioning import java_partition
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.samples.ecs_factory import connection, execution
from shellwatch.worker.prefilter.stage import PrefilterStats, run_prefilter_stage
from tests.integration.kafka_helpers import (
    At,
    Header,
    Sent,
    Stored,
    headers_dict,
    make_topics,
    produce,
    read_all,
    run_stage_until,
    stage_config,
)
from tests.shared import committed_and_end

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

PARTITIONS = 3
START_MS = 1_732_406_400_000


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None = None
    headers: tuple[Header, ...] = ()
    partition: int | None = None
    forwarded_as: str | None = None  # expected shellwatch.kind when it should be forwarded
    dead_reason: DecodeReason | None = None  # expected decode failure when it should be dead-lettered
    other_category: bool = False


@pytest.fixture(scope="module")
def prefilter() -> ByteScreen:
    return Pipeline(load_reverse_shell_rule(), PipelineConfig()).prefilter


# ------------------------------------------------------------------------------------ data


def _dumps(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def mixed_input(names: dict[str, str], rng: random.Random) -> list[Outgoing]:
    hosts = [f"{rng.getrandbits(128):032x}" for _ in range(16)]
    out: list[Outgoing] = []
    for i in range(1000):
        host = rng.choice(hosts)
        key, ts = host.encode(), START_MS + i * 37
        headers: tuple[Header, ...] = (("trace", f"n{i}".encode()),) if i % 3 == 0 else ()
        if i % 40 == 0:
            doc = connection(ts_ms=ts, host_id=host, pid=100 + i, dest_ip="203.0.113.9", event_id=f"n{i}")
            out.append(Outgoing(names["network"], _dumps(doc), key, headers, forwarded_as="network"))
        else:
            doc = connection(
                ts_ms=ts, host_id=host, pid=i, dest_ip="8.8.8.8", event_id=f"n{i}", executable="/usr/sbin/nginx"
            )
            out.append(Outgoing(names["network"], _dumps(doc), key, headers))
        host = rng.choice(hosts)
        key = host.encode()
        if i % 40 == 5:
            doc = execution(ts_ms=ts, host_id=host, pid=5000 + i, parent_pid=100 + i, event_id=f"p{i}")
            out.append(Outgoing(names["process"], _dumps(doc), key, headers, forwarded_as="process"))
        else:
            doc = execution(
                ts_ms=ts, host_id=host, pid=i, parent_pid=1, event_id=f"p{i}", parent_executable="/usr/sbin/sshd"
            )
            out.append(Outgoing(names["process"], _dumps(doc), key, headers))
    host = hosts[0]
    both = execution(ts_ms=START_MS, host_id=host, pid=7, parent_pid=8, event_id="both")
    both["event"]["category"] = ["network", "process"]
    out.append(Outgoing(names["network"], _dumps(both), host.encode(), forwarded_as="network,process"))
    spoof = execution(ts_ms=START_MS, host_id=host, pid=9, parent_pid=8, event_id="spoof")
    out.append(
        Outgoing(
            names["process"],
            _dumps(spoof),
            host.encode(),
            (("shellwatch.progress", b"process"),),
            forwarded_as="process",
        )
    )
    hostless = connection(ts_ms=START_MS, host_id=host, pid=11, dest_ip="198.51.100.1", event_id="hostless")
    del hostless["host"]["id"]
    out.append(Outgoing(names["network"], _dumps(hostless), b"legacy-key", forwarded_as="network"))
    future = connection(ts_ms=4_000_000_000_000, host_id=host, pid=10, dest_ip="198.51.100.1", event_id="2096")
    out.append(Outgoing(names["network"], _dumps(future), host.encode(), forwarded_as="network"))
    for n in range(3):
        file_doc = connection(ts_ms=START_MS, host_id=host, pid=12 + n, dest_ip="198.51.100.1", event_id=f"file{n}")
        file_doc["event"]["category"] = ["file"]
        out.append(Outgoing(names["network"], _dumps(file_doc), host.encode(), other_category=True))
    out += malformed(names, hosts, rng)
    return out


def malformed(names: dict[str, str], hosts: list[str], rng: random.Random) -> list[Outgoing]:
    out: list[Outgoing] = []
    for i in range(20):
        host = rng.choice(hosts)
        topic = names["network"] if i % 2 else names["process"]
        headers: tuple[Header, ...] = (("origin", f"bad-{i}".encode()), ("empty", b""))
        kind = i % 4
        if kind == 0:
            raw = _dumps(execution(ts_ms=START_MS, host_id=host, pid=i, parent_pid=1, event_id=f"t{i}"))
            cut = raw.index(b"/bin/java") + 12
            out.append(Outgoing(topic, raw[:cut], host.encode(), headers, dead_reason="invalid_json"))
        elif kind == 1:
            raw = b'{"process":{"executable":"/usr/bin/java","name":"\xff\xfe"},"n":' + str(i).encode() + b"}"
            out.append(Outgoing(topic, raw, host.encode(), headers, dead_reason="invalid_json"))
        elif kind == 2:
            doc = connection(ts_ms=START_MS, host_id=host, pid=i, dest_ip="203.0.113.1", event_id=f"ts{i}")
            doc["@timestamp"] = "the day before yesterday"
            out.append(Outgoing(topic, _dumps(doc), host.encode(), headers, dead_reason="invalid_timestamp"))
        else:
            out.append(
                Outgoing(
                    topic, b'["/usr/bin/java", ' + str(i).encode() + b"]", None, headers, dead_reason="not_an_object"
                )
            )
    # malformed but rejected by the pre-filter: counted, never decoded
    out.append(Outgoing(names["network"], b'{"process": {"executable": "/usr/sbin/ngi', b"k"))
    out.append(Outgoing(names["process"], b"\xff\xfe not json", b"k"))
    out.append(Outgoing(names["process"], b"", b"k"))
    return out


# ------------------------------------------------------------------------------ assertions


def assert_forwards(relevant: list[Stored], expected: dict[str, Sent[Outgoing]]) -> None:
    """Exactly the relevant records, once each, bytes unchanged, keyed by host.id, in the source partition."""
    got: dict[str, Stored] = {}
    for r in relevant:
        raw_source = headers_dict(r.headers).get("shellwatch.source")
        if "shellwatch.kind" in headers_dict(r.headers) and raw_source is not None:
            got[raw_source.decode()] = r
    assert got.keys() == expected.keys()
    for source, r in got.items():
        s = expected[source]
        assert r.value == s.out.value
        assert r.key == s.out.key  # keyed input: key == host.id (or the original key without a host.id)
        assert r.partition == s.stored.partition
        own = [h for h in s.out.headers if not h[0].startswith("shellwatch.")]  # a spoofed marker header is dropped
        assert r.headers == (
            *own,
            ("shellwatch.kind", (s.out.forwarded_as or "").encode()),
            ("shellwatch.source", source.encode()),
            ("shellwatch.broker_ts", str(s.stored.timestamp).encode()),
        )


def assert_markers(relevant: list[Stored], kinds: dict[str, bytes]) -> None:
    """Every source partition has markers of its kind, the last one after all of that partition's forwards."""
    for topic, kind in kinds.items():
        for p in range(PARTITIONS):
            source = f"{topic}/{p}".encode()
            in_partition = sorted((r for r in relevant if r.partition == p), key=lambda r: r.offset)
            mine = [r for r in in_partition if headers_dict(r.headers).get("shellwatch.source") == source]
            assert mine, f"no progress marker for {source!r}"
            assert all(m.key is None and m.value == b"" for m in mine)
            assert all(headers_dict(m.headers)["shellwatch.progress"] == kind for m in mine)
            forwards = [
                r.offset
                for r in in_partition
                if (headers_dict(r.headers).get("shellwatch.source") or b"").startswith(source + b"/")
            ]
            assert mine[-1].offset > max(forwards, default=-1)


def assert_dead_letters(dead: list[Stored], expected: dict[At, Sent[Outgoing]]) -> None:
    assert len(dead) == len(expected)
    for d in dead:
        h = headers_dict(d.headers)
        topic, partition, offset = (h[f"__connect.errors.{n}"] for n in ("topic", "partition", "offset"))
        assert topic is not None and partition is not None and offset is not None
        s = expected[(topic.decode(), int(partition), int(offset))]
        assert (d.key, d.value) == (s.out.key, s.out.value)
        assert d.headers[: len(s.out.headers)] == s.out.headers
        assert h["__connect.errors.stage"] == b"VALUE_CONVERTER"
        assert h["__connect.errors.exception.class.name"] == b"shellwatch.codec.DecodeError"
        message = h["__connect.errors.exception.message"]
        assert message is not None and message.startswith(f"{s.out.dead_reason}: ".encode())
        assert h["shellwatch.error.reason"] == (s.out.dead_reason or "").encode()


# ----------------------------------------------------------------------------------- tests


def test_forwards_dead_letters_markers_and_commits(
    kafka_bootstrap: str, topic_name: str, unique_group: str, prefilter: ByteScreen
) -> None:
    names = make_topics(kafka_bootstrap, topic_name, network=PARTITIONS, process=PARTITIONS, relevant=PARTITIONS, dlq=1)
    sent = produce(kafka_bootstrap, mixed_input(names, random.Random(20240601)))
    for s in sent:  # confluent's murmur2_random is the Java partitioner
        if s.out.key is not None:
            assert s.stored.partition == java_partition(s.out.key, PARTITIONS)
    by_source = {f"{s.stored.topic}/{s.stored.partition}/{s.stored.offset}": s for s in sent}
    expected_forwards = {src: s for src, s in by_source.items() if s.out.forwarded_as}
    expected_dead = {s.stored.at: s for s in sent if s.out.dead_reason}
    assert len(expected_dead) == 20

    config = stage_config(kafka_bootstrap, names, unique_group)
    stats = asyncio.run(run_stage_until(config, prefilter, lambda st: st.records == len(sent) and st.buffered == 0))

    assert stats.records == len(sent)
    assert stats.records == stats.prefiltered + stats.forwarded + stats.dead_lettered + stats.other_category
    assert stats.forwarded == len(expected_forwards)
    assert stats.other_category == sum(s.out.other_category for s in sent)
    assert stats.dead_letters == Counter(s.out.dead_reason for s in expected_dead.values())
    assert stats.far_future == 1  # the 2096 event (the others are from 2024: far in the past, which is fine)
    assert stats.batches >= 1

    relevant = read_all(kafka_bootstrap, names["relevant"], PARTITIONS)
    markers = [r for r in relevant if "shellwatch.progress" in headers_dict(r.headers)]
    assert len(markers) == stats.markers
    assert len(relevant) == stats.forwarded + stats.markers
    assert_forwards(relevant, expected_forwards)
    assert_markers(relevant, {names["network"]: b"network", names["process"]: b"process"})
    assert_dead_letters(read_all(kafka_bootstrap, names["dlq"], 1), expected_dead)

    committed, ends = committed_and_end(kafka_bootstrap, unique_group, [names["network"], names["process"]], PARTITIONS)
    assert committed == ends


def test_with_the_bundled_rules_events_no_rule_can_match_are_dropped_and_committed(
    kafka_bootstrap: str, topic_name: str, unique_group: str
) -> None:
    # the worker's router: a Java process's connections to private addresses and its non-shell children pass the
    # byte screen but no rule's stage; they are counted as no_match, never forwarded, and their offsets committed
    pipeline = Pipeline(load_reverse_shell_rule(), PipelineConfig(), load_shell_rule())
    names = make_topics(kafka_bootstrap, topic_name, network=PARTITIONS, process=PARTITIONS, relevant=PARTITIONS, dlq=1)
    rng = random.Random(11)
    records = []
    for i in range(60):
        host = f"{rng.getrandbits(128):032x}"
        ts = START_MS + i * 10
        public = i % 3 == 0
        conn = connection(ts_ms=ts, host_id=host, pid=i, dest_ip="8.8.8.8" if public else "10.0.0.9", event_id=f"c{i}")
        records.append(
            Outgoing(names["network"], _dumps(conn), host.encode(), forwarded_as="network" if public else None)
        )
        shell = i % 4 == 0
        child = execution(ts_ms=ts + 5, host_id=host, pid=1000 + i, parent_pid=i, event_id=f"x{i}")
        if not shell:  # Java starting Java: no shell, no recon or HTTP tool
            child["process"].update(name="java", executable="/usr/bin/java", args=["/usr/bin/java", "-version"])
            child["process"]["command_line"] = "/usr/bin/java -version"
        records.append(
            Outgoing(names["process"], _dumps(child), host.encode(), forwarded_as="process" if shell else None)
        )
    sent = produce(kafka_bootstrap, records)
    assert all(pipeline.prefilter.accepts(s.out.value) for s in sent)  # the byte screen passes every one

    config = stage_config(kafka_bootstrap, names, unique_group)
    stats = asyncio.run(
        run_stage_until(
            config,
            pipeline.prefilter,
            lambda st: st.records == len(sent) and st.buffered == 0,
            decode=pipeline.decode_for_routing,
        )
    )
    expected = sorted(s.out.value for s in sent if s.out.forwarded_as)
    assert (stats.forwarded, stats.no_match, stats.prefiltered) == (len(expected), len(sent) - len(expected), 0)
    assert stats.accounted == stats.records == len(sent)
    relevant = [r for r in read_all(kafka_bootstrap, names["relevant"], PARTITIONS) if r.key]
    assert sorted(r.value for r in relevant) == expected
    committed, ends = committed_and_end(kafka_bootstrap, unique_group, [names["network"], names["process"]], PARTITIONS)
    assert committed == ends


def test_unkeyed_and_wrongly_keyed_input_is_repartitioned_by_host_id(
    kafka_bootstrap: str, topic_name: str, unique_group: str, prefilter: ByteScreen
) -> None:
    names = make_topics(kafka_bootstrap, topic_name, network=PARTITIONS, process=PARTITIONS, relevant=PARTITIONS, dlq=1)
    rng = random.Random(7)
    records = []
    for i in range(40):
        host = f"{rng.getrandbits(128):032x}"
        doc = connection(ts_ms=START_MS + i, host_id=host, pid=i, dest_ip="203.0.113.5", event_id=f"u{i}")
        wrong = (java_partition(host.encode(), PARTITIONS) + 1) % PARTITIONS  # never where host.id belongs
        key = None if i % 2 else f"wrong-{i}".encode()
        records.append(Outgoing(names["network"], _dumps(doc), key, partition=wrong, forwarded_as="network"))
    sent = produce(kafka_bootstrap, records)

    config = stage_config(kafka_bootstrap, names, unique_group)
    stats = asyncio.run(
        run_stage_until(config, prefilter, lambda st: st.records == len(sent) and st.buffered == 0, settle_s=0)
    )
    assert stats.forwarded == len(sent)

    relevant = [r for r in read_all(kafka_bootstrap, names["relevant"], PARTITIONS) if r.key]
    assert sorted(r.value for r in relevant) == sorted(s.out.value for s in sent)
    by_value = {s.out.value: s for s in sent}
    for r in relevant:
        host_id = orjson.loads(r.value)["host"]["id"].encode()
        assert r.key == host_id
        assert r.partition == java_partition(host_id, PARTITIONS)
        assert r.partition != by_value[r.value].stored.partition


def test_mismatched_or_missing_topics_refuse_to_start(
    kafka_bootstrap: str, topic_name: str, prefilter: ByteScreen
) -> None:
    names = make_topics(kafka_bootstrap, topic_name, network=3, process=2, relevant=3, dlq=1)
    config = stage_config(kafka_bootstrap, names, f"never-{topic_name}")
    stop = asyncio.Event()
    with pytest.raises(PartitionMismatchError) as caught:
        asyncio.run(run_prefilter_stage(config, prefilter, stop, PrefilterStats()))
    message = str(caught.value)
    assert f"{names['network']}=3" in message
    assert f"{names['process']}=2" in message
    assert f"{names['relevant']}=3" in message

    missing = {**names, "process": f"{topic_name}-absent"}
    with pytest.raises(PartitionMismatchError, match=f"{topic_name}-absent=missing"):
        asyncio.run(run_prefilter_stage(stage_config(kafka_bootstrap, missing, "g"), prefilter, stop, PrefilterStats()))
    no_dlq = {**make_topics(kafka_bootstrap, f"{topic_name}-b", network=2, process=2, relevant=2), "dlq": "absent-dlq"}
    with pytest.raises(PartitionMismatchError, match="dead-letter topic absent-dlq is missing"):
        asyncio.run(run_prefilter_stage(stage_config(kafka_bootstrap, no_dlq, "g"), prefilter, stop, PrefilterStats()))


def test_failed_forward_raises_and_commits_nothing(
    kafka_bootstrap: str, topic_name: str, unique_group: str, prefilter: ByteScreen
) -> None:
    names = make_topics(kafka_bootstrap, topic_name, network=PARTITIONS, process=PARTITIONS, dlq=1)
    names["relevant"] = f"{topic_name}-relevant"
    create_topic(kafka_bootstrap, names["relevant"], PARTITIONS, config={"max.message.bytes": "600"})  # < one doc
    host = "0f0e0d0c0b0a09080706050403020100"
    doc = connection(ts_ms=START_MS, host_id=host, pid=1, dest_ip="203.0.113.7", event_id="too-big")
    produce(kafka_bootstrap, [Outgoing(names["network"], _dumps(doc), host.encode())])

    stats = PrefilterStats()
    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(
            asyncio.wait_for(
                run_prefilter_stage(
                    stage_config(kafka_bootstrap, names, unique_group), prefilter, asyncio.Event(), stats
                ),
                25,
            )
        )
    assert stats.records == 1
    committed, _ends = committed_and_end(
        kafka_bootstrap, unique_group, [names["network"], names["process"]], PARTITIONS
    )
    # nothing past the record committed (while it waited in the merge for its quiet partner, offset 0 may have
    # been): it will be re-read
    assert all(offset <= 0 for offset in committed.values())
