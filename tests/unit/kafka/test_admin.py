"""The co-partition checks on partition counts (no broker): what passes, and the messages that refuse."""

from __future__ import annotations

import pytest

from shellwatch.kafka.admin import PartitionMismatchError, require_copartitioned, require_inputs_copartitioned


def stage_check(counts: dict[str, int]) -> int:
    return require_copartitioned(counts, source_topics=["net", "proc"], relevant_topic="rel", dead_letter_topic="dlq")


def test_stage_check_returns_the_common_count() -> None:
    assert stage_check({"net": 3, "proc": 3, "rel": 3, "dlq": 1}) == 3


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        (
            {"net": 3, "proc": 2, "rel": 3, "dlq": 1},
            "source topics and the relevant topic must exist with equal partition counts "
            "(co-partitioned by host.id), found: net=3, proc=2, rel=3",
        ),
        (
            {"net": 3, "rel": 3, "dlq": 1},
            "source topics and the relevant topic must exist with equal partition counts "
            "(co-partitioned by host.id), found: net=3, proc=missing, rel=3",
        ),
        ({"net": 2, "proc": 2, "rel": 2}, "dead-letter topic dlq is missing (topics: net=2, proc=2, rel=2)"),
    ],
)
def test_stage_check_refuses(counts: dict[str, int], message: str) -> None:
    with pytest.raises(PartitionMismatchError) as caught:
        stage_check(counts)
    assert str(caught.value) == message


def test_inputs_check() -> None:
    assert require_inputs_copartitioned({"net": 4, "proc": 4, "other": 1}, ["net", "proc"]) == 4
    assert require_inputs_copartitioned({"mixed": 2}, ["mixed"]) == 2
    with pytest.raises(PartitionMismatchError) as missing:
        require_inputs_copartitioned({"net": 4}, ["net", "proc"])
    assert str(missing.value) == (
        "input topic(s) missing: proc (the worker never creates input topics: "
        "create them with the partition count of the other input, or fix the topic settings)"
    )
    with pytest.raises(PartitionMismatchError) as differ:
        require_inputs_copartitioned({"net": 3, "proc": 5}, ["net", "proc"])
    assert str(differ.value) == (
        "input topics are not co-partitioned: partition counts differ (net=3, proc=5); "
        "network and process topics must have equal partition counts and be keyed by host.id"
    )
