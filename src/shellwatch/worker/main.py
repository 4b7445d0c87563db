"""``shellwatch worker``: check the topics, then run the Faust worker until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

import faust

from shellwatch.kafka.admin import KafkaAccessError, PartitionMismatchError
from shellwatch.rules.model import ReverseShellRule
from shellwatch.rules.shell_rule import ShellRule
from shellwatch.settings import Settings
from shellwatch.worker.app import create_app
from shellwatch.worker.provision import ensure_worker_topics

__all__ = ["run_worker"]


def run_worker(settings: Settings, rule: ReverseShellRule, shell_rule: ShellRule, *, loglevel: str = "INFO") -> int:
    if settings.kafka.bootstrap_servers is None:
        print("shellwatch: KAFKA_BOOTSTRAP_SERVERS is not set", file=sys.stderr)
        return 2
    try:
        partitions = ensure_worker_topics(settings.kafka)
    except (PartitionMismatchError, KafkaAccessError) as exc:
        print(f"shellwatch: refusing to start: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, rule, shell_rule, partitions=partitions)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
