"""run_restarting: a failing coroutine runs again after a growing delay; cancelling the task ends it."""

from __future__ import annotations

import asyncio

import pytest

from shellwatch.kafka.reconnect import Backoff
from shellwatch.worker.restarts import run_restarting


class Script:
    """A run_once whose n-th run does outcomes[n]; each run lasts ``durations[n]`` on the fake clock."""

    def __init__(self, outcomes: list[BaseException | None], durations: list[float] | None = None) -> None:
        self.outcomes = outcomes
        self.durations = durations or [0.0] * len(outcomes)
        self.runs = 0
        self.now = 0.0
        self.slept: list[float] = []
        self.failures: list[tuple[str, float]] = []

    async def run_once(self) -> None:
        n, self.runs = self.runs, self.runs + 1
        self.now += self.durations[n]
        outcome = self.outcomes[n]
        if outcome is not None:
            raise outcome

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        self.now += delay

    def failed(self, exc: BaseException, delay: float) -> None:
        self.failures.append((type(exc).__name__, delay))


def restart(script: Script) -> None:
    asyncio.run(
        run_restarting(
            script.run_once,
            backoff=Backoff(1.0, 4.0, jitter=0.0),
            on_failure=script.failed,
            stable_after_s=60.0,
            clock=lambda: script.now,
            sleep=script.sleep,
        )
    )


def test_failures_are_retried_with_growing_delays_until_a_run_returns() -> None:
    script = Script([ConnectionError("a"), TimeoutError("b"), RuntimeError("c"), RuntimeError("d"), None])
    restart(script)
    assert script.runs == 5
    assert script.failures == [
        ("ConnectionError", 1.0),
        ("TimeoutError", 2.0),
        ("RuntimeError", 4.0),
        ("RuntimeError", 4.0),
    ]
    assert script.slept == [1.0, 2.0, 4.0, 4.0]


def test_a_run_that_lasted_starts_the_backoff_over() -> None:
    script = Script([OSError(), OSError(), OSError(), OSError(), None], durations=[0.0, 0.0, 120.0, 0.0, 0.0])
    restart(script)
    assert [delay for _, delay in script.failures] == [1.0, 2.0, 1.0, 2.0]


def test_a_cancellation_from_inside_the_run_is_a_failure() -> None:
    script = Script([asyncio.CancelledError(), None])
    restart(script)
    assert script.failures == [("CancelledError", 1.0)] and script.runs == 2


def test_cancelling_the_task_ends_it() -> None:
    started = asyncio.Event()
    failures: list[BaseException] = []

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    async def main() -> None:
        task = asyncio.create_task(
            run_restarting(forever, backoff=Backoff(1.0, 2.0), on_failure=lambda exc, _: failures.append(exc))
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert failures == []
