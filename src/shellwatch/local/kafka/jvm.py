"""A JVM child process bound to this process: spawned in its own process group that dies with the
thread that started it, stopped SIGTERM then SIGKILL, and stopped at interpreter exit if still running.

:class:`JvmService` is the lifecycle the local broker and the local schema registry share; each
subclass says how to prepare, launch and probe its JVM and where its logs are.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

__all__ = ["JvmService", "die_with_parent", "spawn_bound_to_parent"]

log = logging.getLogger(__name__)


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: prctl(PR_SET_PDEATHSIG, sig) in the child, so it dies with this thread.

    For the broker, the fallback when `setpriv` is missing; for worker subprocesses, the mechanism.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def _child() -> None:
        prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # parent already gone between fork and prctl
            os._exit(1)

    return _child


def spawn_bound_to_parent(
    cmd: list[str],
    out: IO[bytes],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    sig: signal.Signals = signal.SIGKILL,
) -> subprocess.Popen[bytes]:
    """Start *cmd* in a new session (own process group) that gets *sig* when our thread dies."""
    preexec: Callable[[], None] | None = None
    setpriv = shutil.which("setpriv")  # util-linux: prctl(PR_SET_PDEATHSIG) then exec, no Python in child
    if setpriv is not None:
        cmd = [setpriv, "--pdeathsig", sig.name.removeprefix("SIG"), "--", *cmd]
    else:
        preexec = die_with_parent(sig)
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,  # noqa: PLW1509 -- fallback only (no setpriv); tiny, no locks
        cwd=cwd,
        env=env,
    )


_running: set[JvmService] = set()
_running_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    with _running_lock:
        services = list(_running)
    for service in services:
        with contextlib.suppress(Exception):
            service.stop()


atexit.register(_stop_all_at_exit)


class JvmService:
    """Start/stop lifecycle of one JVM; subclasses implement the ``_prepare`` .. ``_failure_log`` hooks."""

    start_error: ClassVar[type[RuntimeError]] = RuntimeError
    label: ClassVar[str] = "JVM"

    def __init__(self, *, stop_timeout: float) -> None:
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    # -- hooks ------------------------------------------------------------------------------------

    def address(self) -> str:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Checks and a fresh working directory, before anything is launched."""
        raise NotImplementedError

    def _launch(self) -> None:
        """Start the JVM with :meth:`_spawn`."""
        raise NotImplementedError

    def _wait_ready(self) -> None:
        raise NotImplementedError

    def _cleanup_dir(self) -> None:
        raise NotImplementedError

    def _failure_log(self) -> str:
        raise NotImplementedError

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> str:
        """Launch and wait until ready; returns :meth:`address`. On failure the JVM is killed, its
        directory removed, and :attr:`start_error` raised with the log tail."""
        with self._lock:
            if self.process is not None:
                return self.address()
            self._prepare()
            try:
                self._launch()
                self._wait_ready()
            except BaseException as exc:
                detail = self._failure_log()
                self._terminate(force=True)
                self._cleanup_dir()
                if isinstance(exc, self.start_error):
                    raise self.start_error(f"{exc}\n{detail}") from None
                if isinstance(exc, Exception):
                    raise self.start_error(f"{self.label} failed to start: {exc!r}\n{detail}") from exc
                raise
            return self.address()

    def stop(self) -> None:
        """SIGTERM the JVM's process group, wait ``stop_timeout`` s, then SIGKILL. Idempotent."""
        with self._lock:
            self._terminate(force=False)
            self._cleanup_dir()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, cmd: list[str], out: IO[bytes], *, cwd: Path) -> None:
        self.process = spawn_bound_to_parent(cmd, out, cwd=cwd)
        with _running_lock:
            _running.add(self)

    def _terminate(self, *, force: bool) -> None:
        proc = self.process
        if proc is None:
            return
        pgid = proc.pid  # start_new_session=True: the JVM leads its own process group
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL if force else signal.SIGTERM)
            try:
                proc.wait(timeout=5 if force else self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s %d ignored SIGTERM for %.0fs; sending SIGKILL", self.label, pgid, self.stop_timeout)
        # Reap / make sure no straggler stays in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        self.process = None
        with _running_lock:
            _running.discard(self)
