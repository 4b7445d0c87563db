"""``shellwatch worker``: check the topics, then run the Faust worker until SIGTERM/SIGINT.

The process around the app: aiokafka's missing reconnect backoff (:mod:`shellwatch.kafka.reconnect`), the bound
on repeated client log lines (:mod:`shellwatch.worker.log_limit`) and a stop deadline. A stop is graceful while
Kafka answers (offsets committed, clients closed, groups left); while it does not, the final commits wait for a
coordinator forever, so a stop that has not finished ``SHUTDOWN_GRACE_S`` after the signal ends the process
there. Nothing is lost: offsets not committed are read again by whoever owns the partitions next.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, Final

import faust

from shellwatch.core.pipeline import worker_inputs
from shellwatch.kafka.admin import KafkaAccessError, PartitionMismatchError
from shellwatch.kafka.reconnect import CLUSTER, install_metadata_backoff
from shellwatch.rules.eql_rule import EqlRule
from shellwatch.rules.model import ReverseShellRule
from shellwatch.rules.shell_rule import ShellRule
from shellwatch.settings import Settings
from shellwatch.worker.app import create_app
from shellwatch.worker.log_limit import RepeatLimiter
from shellwatch.worker.provision import ensure_worker_topics

__all__ = ["SHUTDOWN_GRACE_S", "run_worker"]

log = logging.getLogger("shellwatch.worker")

SHUTDOWN_GRACE_S: Final = 20.0  # well inside the chart's terminationGracePeriodSeconds (60)


class _Worker(faust.Worker):
    """Faust's worker with the log limiter on its handlers and a deadline on stopping."""

    def __init__(self, app: Any, *, limiter: RepeatLimiter, shutdown_grace_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limiter = limiter
        self._shutdown_grace_s = shutdown_grace_s
        self._deadline: threading.Timer | None = None

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        for handler in logger.handlers:
            handler.addFilter(self._limiter)

    # mode binds these two to SIGINT and SIGTERM when the worker starts
    def _on_sigint(self) -> None:
        self._arm_deadline(signal.SIGINT)
        super()._on_sigint()

    def _on_sigterm(self) -> None:
        self._arm_deadline(signal.SIGTERM)
        super()._on_sigterm()

    def _arm_deadline(self, signum: signal.Signals) -> None:
        if self._deadline is None:
            self._deadline = threading.Timer(self._shutdown_grace_s, self._give_up, args=(signum,))
            self._deadline.daemon = True
            self._deadline.start()

    def _give_up(self, signum: signal.Signals) -> None:
        log.warning(
            "stop did not finish %.0f s after %s (%s): exiting without the final commits; records not committed "
            "are read again by the partitions' next owner",
            self._shutdown_grace_s,
            signum.name,
            "Kafka is unreachable" if not CLUSTER.reachable else "Kafka answers",
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):  # exiting anyway
                handler.flush()
        os._exit(0)


def run_worker(
    settings: Settings,
    rule: ReverseShellRule,
    shell_rule: ShellRule,
    rules: Sequence[EqlRule] = (),
    *,
    loglevel: str = "INFO",
) -> int:
    """The worker; ``rules``: the operator's EQL rules (see :func:`~shellwatch.core.pipeline.worker_refusal`)."""
    if settings.kafka.bootstrap_servers is None:
        print("shellwatch: KAFKA_BOOTSTRAP_SERVERS is not set", file=sys.stderr)
        return 2
    try:
        partitions = ensure_worker_topics(settings.kafka, worker_inputs(rules))
    except (PartitionMismatchError, KafkaAccessError) as exc:
        print(f"shellwatch: refusing to start: {exc}", file=sys.stderr)
        return 2
    install_metadata_backoff()
    limiter = RepeatLimiter()
    app = create_app(settings, rule, shell_rule, partitions=partitions, log_limiter=limiter, rules=rules)
    worker = _Worker(app, limiter=limiter, shutdown_grace_s=SHUTDOWN_GRACE_S, loglevel=loglevel, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
