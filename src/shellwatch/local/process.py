"""A ``shellwatch worker`` subprocess with its own settings (demo and integration tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from shellwatch.local.kafka.jvm import spawn_bound_to_parent

__all__ = ["WorkerProcess"]


class WorkerProcess:
    def __init__(
        self, env: Mapping[str, str], log_path: Path, *, loglevel: str = "INFO", cpus: str | None = None
    ) -> None:
        """``cpus``: run the worker pinned to these CPUs (``taskset -c`` syntax: ``0``, ``0,2``), as the benchmark's
        CPU-starved run does."""
        self.cpus = cpus
        self.env = dict(env)
        self.log_path = log_path
        self.loglevel = loglevel
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Self:
        self._log = self.log_path.open("ab")
        self.process = spawn_bound_to_parent(  # no orphan worker if this process dies
            [
                *(["taskset", "-c", self.cpus] if self.cpus is not None else []),  # taskset execs the worker
                sys.executable,
                "-m",
                "shellwatch",
                "worker",
                "--loglevel",
                self.loglevel,
            ],
            self._log,
            env=self.env,
            sig=signal.SIGTERM,
        )
        return self

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit status."""
        process, self.process = self.process, None
        status = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            status = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def kill(self) -> int | None:
        """SIGKILL the worker's process group at once (a crash: nothing is flushed or committed); returns the
        exit status."""
        process, self.process = self.process, None
        status = None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def exit_status(self) -> int | None:
        """The exit status once the worker has exited on its own, else None (running, or not started)."""
        return None if self.process is None else self.process.poll()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
