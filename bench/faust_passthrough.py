"""Baseline (b): a Faust agent that only iterates the input topics. Run as a subprocess by bench.run.

    python -m bench.faust_passthrough BOOTSTRAP RESULT.json EXPECTED TOPIC...

Writes ``{"first_s": ..., "last_s": ..., "events": N}`` (time.time() seconds) once EXPECTED events were
seen, then stops the worker.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import faust


def main() -> None:
    bootstrap, result, expected, *topics = sys.argv[1:]
    target = int(expected)
    app = faust.App(
        f"bench-passthrough-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        env={},
        env_prefix="BENCH_FAUST_",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-faust-"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
    )
    source = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    seen = {"events": 0, "first_s": 0.0}

    @app.agent(source)
    async def passthrough(stream: Any) -> None:
        async for _value in stream:
            if not seen["events"]:
                seen["first_s"] = time.time()
            seen["events"] += 1
            if seen["events"] == target:
                Path(result).write_text(json.dumps({**seen, "last_s": time.time()}))
                os.kill(os.getpid(), signal.SIGTERM)

    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
