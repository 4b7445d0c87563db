"""``python -m shellwatch.local.kafka {fetch,run}``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from shellwatch.local.kafka.broker import BrokerStartError, LocalKafka
from shellwatch.local.kafka.jars import CACHE_ENV_VAR, KAFKA_VERSION, KafkaFetchError, fetch_jars, jars_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shellwatch.local.kafka",
        description=f"Fetch Apache Kafka {KAFKA_VERSION} jars with Maven and run a local KRaft broker.",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"cache root (default: ${CACHE_ENV_VAR} or ~/.cache/shellwatch); jars go to ROOT/kafka-VER/libs",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the jars (idempotent) and print the libs directory")
    run = sub.add_parser("run", help="start a broker, print bootstrap=HOST:PORT, run until SIGINT/SIGTERM")
    run.add_argument("--startup-timeout", type=float, default=60.0, help="seconds (default 60)")
    run.add_argument("--keep-data", action="store_true", help="keep the temporary data dir on exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        libs = fetch_jars(jars_dir(args.cache))
    except KafkaFetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "fetch":
        print(libs)
        return 0

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    kafka = LocalKafka(libs, startup_timeout=args.startup_timeout, keep_data=args.keep_data)
    t0 = time.monotonic()
    try:
        kafka.start()
    except BrokerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"bootstrap={kafka.bootstrap_servers}", flush=True)
        print(
            f"# Kafka {KAFKA_VERSION} ready in {time.monotonic() - t0:.1f}s, pid {kafka.pid}, "
            f"log {kafka.server_log}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            if not kafka.is_running():
                print("error: broker JVM exited unexpectedly", file=sys.stderr)
                return 1
    finally:
        kafka.stop()
    print("# broker stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
