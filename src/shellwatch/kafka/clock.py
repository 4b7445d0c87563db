"""The wall clock in epoch milliseconds (the unit of Kafka record timestamps), defined once.

The layers below this one (``ecs``, ``match``, ``rules``, ``formats``, ``core``) read no clock: the time is
passed in. Code that reads the wall clock takes a :data:`WallClockMs` parameter defaulting to
:func:`wall_clock_ms`, so tests can pass their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["WallClockMs", "wall_clock_ms"]

WallClockMs = Callable[[], int]


def wall_clock_ms() -> int:
    """Now, in whole milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000
