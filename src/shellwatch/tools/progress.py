"""A progress line with rate for long-running commands (``record``, ``replay``), on stderr.

On a terminal the line is redrawn in place (at most 10 times a second); elsewhere (CI logs, pipes) a
line is written every ``interval_s`` so logs stay short. The clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

__all__ = ["Progress"]


class Progress:
    def __init__(
        self,
        label: str,
        out: IO[str],
        clock_s: Callable[[], float],
        *,
        total: int | None = None,
        interval_s: float = 2.0,
    ) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self._out = out
        self._clock_s = clock_s
        self._tty = out.isatty()
        self._interval_s = 0.1 if self._tty else interval_s
        self._started = clock_s()
        self._shown = self._started

    @property
    def elapsed_s(self) -> float:
        return self._clock_s() - self._started

    @property
    def rate(self) -> float:
        elapsed = self.elapsed_s
        return self.count / elapsed if elapsed > 0 else 0.0

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = self._clock_s()
        if now - self._shown >= self._interval_s:
            self._shown = now
            self._show(final=False)

    def done(self) -> None:
        self._show(final=True)

    def line(self) -> str:
        if self.total:
            share = min(1.0, self.count / self.total)
            filled = int(share * 24)
            bar = "#" * filled + "." * (24 - filled)
            head = f"[{bar}] {self.count}/{self.total} ({share:.0%})"
        else:
            head = f"{self.count}"
        return f"{self.label}: {head} {self.rate:,.0f}/s {self.elapsed_s:.1f} s"

    def _show(self, *, final: bool) -> None:
        if self._tty:
            self._out.write("\r" + self.line() + ("\n" if final else ""))
        else:
            self._out.write(self.line() + "\n")
        self._out.flush()
