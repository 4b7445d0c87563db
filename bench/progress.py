"""The benchmark's progress lines, on stderr (stdout is left to what a run prints as its result)."""

from __future__ import annotations

import sys
import time


def step(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
