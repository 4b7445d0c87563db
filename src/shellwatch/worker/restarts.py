"""Run a long-lived coroutine again, after a backoff, whenever it fails (the worker's pre-filter stage).

A broker outage makes the pre-filter stage fail (a produce that cannot be acknowledged, a client that cannot
start); ending the worker for that would turn every outage into a restart of the pod. Instead the stage is
started again, with its own fresh clients, from the committed offsets, once per :class:`Backoff` delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from shellwatch.kafka.reconnect import Backoff

__all__ = ["run_restarting"]


async def run_restarting(
    run_once: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff,
    on_failure: Callable[[BaseException, float], None],
    stable_after_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Await ``run_once()`` until it returns. When it raises, ``on_failure(exception, delay_s)``, wait, run it again.

    A run that lasted ``stable_after_s`` starts the backoff over. Cancelling the task running this cancels the
    run and ends here; a ``CancelledError`` that comes out of the run while this task is not being cancelled
    (a client cancelled one of its own futures) is a failure like any other.
    """
    while True:
        started = clock()
        failure: BaseException
        try:
            await run_once()
            return
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            failure = exc
        except Exception as exc:
            failure = exc
        if clock() - started >= stable_after_s:
            backoff.reset()
        delay = backoff.next()
        on_failure(failure, delay)
        await sleep(delay)
