"""A bound on repeated log lines from the Kafka client libraries (installed on the worker's log handlers).

While a broker is away, aiokafka and Faust log the same failure for every attempt (``Unable connect to node
with id %s: %s``, ``Unable to update metadata from %s``, ``Group Coordinator Request failed: %s``, ...), from
every client. :class:`RepeatLimiter` lets through the first ``burst`` records of each kind (logger, level and
message template) per ``period_s`` and counts the rest; the next record of that kind that passes says how many
were suppressed, and :meth:`RepeatLimiter.flush` (the worker's stats timer) reports counts nobody reported yet.
The worker's own line per late event (``shellwatch.worker.runtime``) is limited the same way. Records of other
loggers always pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LIMITED_LOGGERS", "RepeatLimiter"]

# the Kafka clients, and the worker's line per late event (a burst of disorder can make thousands a second)
LIMITED_LOGGERS = ("aiokafka", "faust", "mode", "shellwatch.worker.runtime")
_MAX_KINDS = 1_000  # kinds remembered; older quiet ones are forgotten beyond this


@dataclass(slots=True)
class _Window:
    started_s: float
    passed: int = 0
    suppressed: int = 0


_Kind = tuple[str, int, str]  # logger name, level, message template


class RepeatLimiter(logging.Filter):
    """At most ``burst`` records per kind and ``period_s`` from loggers under ``prefixes``; thread-safe.

    One instance may sit on several handlers: a record is judged once, and every handler gets that verdict.
    """

    def __init__(
        self,
        *,
        burst: int = 5,
        period_s: float = 60.0,
        prefixes: tuple[str, ...] = LIMITED_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
        report: logging.Logger | None = None,
    ) -> None:
        super().__init__()
        if burst < 1 or period_s <= 0:
            raise ValueError(f"burst must be >= 1 and period_s > 0, got {burst}, {period_s}")
        self.burst = burst
        self.period_s = period_s
        self.prefixes = prefixes
        self.clock = clock
        self.report = report or logging.getLogger("shellwatch.logs")
        self.suppressed_total = 0
        self._windows: dict[_Kind, _Window] = {}
        self._lock = threading.Lock()
        self._last: tuple[logging.LogRecord, bool] | None = None

    def _limited(self, name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._limited(record.name):
            return True
        with self._lock:
            last = self._last
            if last is not None and last[0] is record:  # the same record, seen by another handler
                return last[1]
            verdict = self._judge(record)
            self._last = (record, verdict)
            return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        kind = (record.name, record.levelno, str(record.msg))
        window = self._windows.get(kind)
        if window is None or now - window.started_s >= self.period_s:
            earlier = window.suppressed if window is not None else 0
            if window is None and len(self._windows) >= _MAX_KINDS:
                self._forget_quiet(now)
            window = self._windows[kind] = _Window(now)
            if earlier:
                self._annotate(record, earlier)
        if window.passed < self.burst:
            window.passed += 1
            return True
        window.suppressed += 1
        self.suppressed_total += 1
        return False

    def _annotate(self, record: logging.LogRecord, suppressed: int) -> None:
        note = f" [{suppressed} more like this suppressed in the {self.period_s:.0f} s before]"
        if record.args:
            record.msg = str(record.msg) + note.replace("%", "%%")
        else:
            record.msg = str(record.msg) + note

    def _forget_quiet(self, now: float) -> None:
        for kind in [k for k, w in self._windows.items() if now - w.started_s >= self.period_s and not w.suppressed]:
            del self._windows[kind]
        if len(self._windows) >= _MAX_KINDS:  # still full: drop the oldest (their counts are reported)
            for kind, window in sorted(self._windows.items(), key=lambda item: item[1].started_s)[: _MAX_KINDS // 2]:
                self._emit_summary(kind, window)
                del self._windows[kind]

    def flush(self) -> int:
        """Report and forget the suppressed counts of windows that have ended; returns how many lines that logged."""
        now = self.clock()
        with self._lock:
            ended = [(k, w) for k, w in self._windows.items() if now - w.started_s >= self.period_s]
            for kind, _ in ended:
                del self._windows[kind]
        reported = 0
        for kind, window in ended:
            if window.suppressed:
                self._emit_summary(kind, window)
                reported += 1
        return reported

    def _emit_summary(self, kind: _Kind, window: _Window) -> None:
        name, level, template = kind
        self.report.log(
            level,
            "%d more lines of %s like %r suppressed in %.0f s",
            window.suppressed,
            name,
            template[:200],
            self.period_s,
        )
