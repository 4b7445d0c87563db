"""RepeatLimiter: a few records of each kind per period from the Kafka client loggers, then a count."""

from __future__ import annotations

import logging

import pytest

from shellwatch.worker.log_limit import RepeatLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


@pytest.fixture
def wired() -> tuple[RepeatLimiter, Collect, Clock]:
    clock, collect = Clock(), Collect()
    report = logging.getLogger("test.log_limit.report")
    report.handlers[:] = [collect]
    report.propagate = False
    limiter = RepeatLimiter(burst=2, period_s=60.0, clock=clock, report=report)
    collect.addFilter(limiter)
    for name in ("aiokafka.client", "faust.test", "shellwatch.worker", "shellwatch.worker.runtime"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [collect]
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
    return limiter, collect, clock


def test_repeats_pass_burst_times_per_period_then_are_counted(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    limiter, collect, clock = wired
    client = logging.getLogger("aiokafka.client")
    for attempt in range(1000):
        client.error("Unable connect to node with id %s: %s", 1, f"refused #{attempt}")
    assert collect.lines == [
        "aiokafka.client ERROR Unable connect to node with id 1: refused #0",
        "aiokafka.client ERROR Unable connect to node with id 1: refused #1",
    ]
    assert limiter.suppressed_total == 998
    clock.now += 60
    client.error("Unable connect to node with id %s: %s", 1, "refused again")
    assert collect.lines[-1] == (
        "aiokafka.client ERROR Unable connect to node with id 1: refused again "
        "[998 more like this suppressed in the 60 s before]"
    )


def test_kinds_are_logger_level_and_template(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    _, collect, _ = wired
    client, faust_logger = logging.getLogger("aiokafka.client"), logging.getLogger("faust.test")
    for _ in range(5):
        client.error("Unable to update metadata from %s", [1])
        client.warning("Unable to update metadata from %s", [1])
        faust_logger.error("Unable to update metadata from %s", [1])
        client.error("Group Coordinator Request failed: %s", "NodeNotReadyError")
    assert len(collect.lines) == 4 * 2


def test_other_loggers_are_never_limited(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    limiter, collect, _ = wired
    own = logging.getLogger("shellwatch.worker")
    for n in range(50):
        own.warning("pre-filter stage failed (%s); starting it again", n)
    assert len(collect.lines) == 50 and limiter.suppressed_total == 0


def test_the_line_per_late_event_is_limited(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    """A burst of disorder makes a late event per record: those lines are bounded like the clients'."""
    limiter, collect, _ = wired
    runtime = logging.getLogger("shellwatch.worker.runtime")
    for n in range(500):
        runtime.warning("late %s event on relevant partition %d: host %s", "process", 0, f"h{n}")
    assert len(collect.lines) == 2 and limiter.suppressed_total == 498


def test_flush_reports_counts_nobody_reported(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    limiter, collect, clock = wired
    client = logging.getLogger("aiokafka.client")
    for _ in range(12):
        client.error("Unable to update metadata from %s", [1])
    assert limiter.flush() == 0  # the window has not ended yet
    clock.now += 61
    assert limiter.flush() == 1
    assert collect.lines[-1] == (
        "test.log_limit.report ERROR 10 more lines of aiokafka.client like 'Unable to update metadata from %s' "
        "suppressed in 60 s"
    )
    assert limiter.flush() == 0  # reported once
    client.error("Unable to update metadata from %s", [1])
    assert collect.lines[-1] == "aiokafka.client ERROR Unable to update metadata from [1]"  # no count: reported


def test_one_verdict_per_record_however_many_handlers(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    limiter, collect, _ = wired
    second = Collect()
    second.addFilter(limiter)
    client = logging.getLogger("aiokafka.client")
    client.handlers.append(second)
    for _ in range(4):
        client.error("Failed fetch messages from %s: %s", 1, "NodeNotReadyError")
    assert len(collect.lines) == len(second.lines) == 2
    assert limiter.suppressed_total == 2


def test_a_message_with_percent_signs_is_annotated_safely(wired: tuple[RepeatLimiter, Collect, Clock]) -> None:
    _, collect, clock = wired
    client = logging.getLogger("aiokafka.client")
    for _ in range(3):
        client.error("%s failed at 100%% of capacity", "requests")
    clock.now += 60
    client.error("%s failed at 100%% of capacity", "requests")
    assert collect.lines[-1].endswith("[1 more like this suppressed in the 60 s before]")


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="burst"):
        RepeatLimiter(burst=0)
    with pytest.raises(ValueError, match="period_s"):
        RepeatLimiter(period_s=0)
