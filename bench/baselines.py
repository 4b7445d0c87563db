"""Baselines on the input topics: (a) a bare aiokafka ``getmany`` + orjson loop, (b) a Faust pass-through agent."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer


def rates(events: int, started: float, first: float, first_count: int, last: float) -> dict[str, Any]:
    """Events/s over the whole run (start-up and group join included) and from the first batch on."""
    return {
        "events": events,
        "wall_s": round(last - started, 2),
        "events_per_s": round(events / (last - started)),
        "steady_events_per_s": round((events - first_count) / (last - first)) if last > first else None,
    }


async def _bare_loop(bootstrap: str, topics: list[str], expected: int, max_records: int) -> dict[str, Any]:
    started = time.time()
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        seen = first_count = 0
        first = 0.0
        loads = orjson.loads
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
            for records in batch.values():
                for record in records:
                    loads(record.value)
                seen += len(records)
            if seen and not first:
                first, first_count = time.time(), seen
        return rates(seen, started, first, first_count, time.time())
    finally:
        await consumer.stop()


def bare_loop(bootstrap: str, topics: list[str], expected: int, max_records: int = 10_000) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(_bare_loop(bootstrap, topics, expected, max_records), 1800))


def faust_passthrough(bootstrap: str, topics: list[str], expected: int, log: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-b-") as tmp:
        result = Path(tmp) / "result.json"
        started = time.time()
        with log.open("ab") as out:
            process = subprocess.run(
                [sys.executable, "-m", "bench.faust_passthrough", bootstrap, str(result), str(expected), *topics],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=3600,
                check=False,
            )
        if not result.exists():
            raise RuntimeError(f"Faust pass-through exited {process.returncode} without a result; see {log}")
        data = json.loads(result.read_text())
    return rates(data["events"], started, data["first_s"], 1, data["last_s"])
