"""Fetch Apache Kafka jars with Maven and run a throw-away single-node KRaft broker.

Used by the integration tests (``tests/integration/conftest.py``) and by
``python -m shellwatch.local.kafka``.  Nothing here runs at import time: no
environment variable is read, no process is started, no directory is created.

Orphan protection: the JVM is started in its own session/process group and gets
``PR_SET_PDEATHSIG=SIGKILL`` (through ``setpriv --pdeathsig KILL`` when available,
else ``prctl`` in ``preexec_fn``), so it dies when the *thread* that started it
dies -- including ``kill -9`` of the Python process.  Call :meth:`LocalKafka.start`
from a long-lived thread (normally the main thread).  An ``atexit`` handler stops
brokers cleanly on normal interpreter exit.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.resources
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from confluent_kafka.admin import AdminClient

from shellwatch.errors import BrokerStartError
from shellwatch.kafka.admin import admin_conf
from shellwatch.local.kafka.jars import KAFKA_VERSION, java_executable, log_tail
from shellwatch.local.kafka.jvm import JvmService, spawn_bound_to_parent
from shellwatch.local.kafka.listeners import SecureListener, SecureListeners, scram_format_args, secure_properties
from shellwatch.local.ports import free_ports

__all__ = ["BrokerStartError", "LocalKafka"]

_PACKAGE = "shellwatch.local.kafka"
_LOG_TAIL_LINES = 40

log = logging.getLogger(__name__)


def _random_cluster_id() -> str:
    """Kafka-style base64url UUID (22 chars), never starting with '-' (it would look like an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


_DATA_DIR_PREFIX = "shellwatch-kafka-"
_OWNER_FILE = "owner.pid"


def _sweep_stale_data_dirs() -> None:
    """Remove data dirs left by a process that was SIGKILLed (its JVM died with it via PDEATHSIG)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_DATA_DIR_PREFIX}*"):
        try:
            owner = int((path / _OWNER_FILE).read_text().strip())
            if path.stat().st_uid != os.getuid():
                continue
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):
            continue  # no/odd owner file (kept dir, or being created), or not ours: leave it


def _server_properties(
    *,
    port: int,
    controller_port: int,
    log_dirs: Path,
    extra: Mapping[str, str],
    secure: Mapping[str, str] | None = None,
) -> dict[str, str]:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "5",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": "2097152",  # must be > 1 MiB per cleaner thread
        "log.cleaner.threads": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
    }
    for key, value in (secure or {}).items():
        joined = key in ("listeners", "advertised.listeners", "listener.security.protocol.map")
        props[key] = f"{props[key]},{value}" if joined else value
    props.update(extra)
    return props


class LocalKafka(JvmService):
    """A single-node KRaft Kafka broker+controller on 127.0.0.1, in a fresh temporary data dir.

    :meth:`start` formats storage, launches the JVM and waits until a metadata request succeeds
    (``startup_timeout`` counts from JVM launch); on failure the data dir is removed too (unless
    ``keep_data``) and :class:`BrokerStartError` carries the log tails.

    >>> with LocalKafka(fetch_jars()) as kafka:          # doctest: +SKIP
    ...     print(kafka.bootstrap_servers)
    """

    start_error = BrokerStartError
    label = "local Kafka"

    def __init__(
        self,
        libs_dir: str | os.PathLike[str],
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 20.0,
        keep_data: bool = False,
        heap_opts: tuple[str, ...] = ("-Xms256m", "-Xmx512m"),
        extra_properties: Mapping[str, str] | None = None,
        secure_listeners: SecureListeners | None = None,
    ) -> None:
        super().__init__(stop_timeout=stop_timeout)
        self.libs_dir = Path(libs_dir)
        self.startup_timeout = startup_timeout
        self.keep_data = keep_data
        self.heap_opts = heap_opts
        self.extra_properties = dict(extra_properties or {})
        self.secure_listeners = secure_listeners
        self.secure_ports: dict[SecureListener, int] = {}
        self.data_dir: Path | None = None
        self.port: int | None = None
        self.controller_port: int | None = None
        self._java = ""

    # ----------------------------------------------------------------- public

    @property
    def bootstrap_servers(self) -> str:
        if self.port is None or self.process is None:
            raise RuntimeError("LocalKafka is not running")
        return f"127.0.0.1:{self.port}"

    @property
    def server_log(self) -> Path | None:
        return None if self.data_dir is None else self.data_dir / "logs" / "server.log"

    def address(self) -> str:
        return self.bootstrap_servers

    def secure_bootstrap(self, listener: SecureListener) -> str:
        """``HOST:PORT`` of a secure listener (``SASL_PLAINTEXT``, ``SSL``, ``SASL_SSL``) of the running broker."""
        if self.process is None or listener not in self.secure_ports:
            raise RuntimeError(f"LocalKafka has no running {listener} listener")
        return f"127.0.0.1:{self.secure_ports[listener]}"

    def halt(self, *, kill: bool = False) -> None:
        """Stop the broker JVM but keep its data dir and ports, for :meth:`restart` (a broker outage).

        ``kill=False``: SIGTERM, a controlled shutdown (SIGKILL after ``stop_timeout``); ``kill=True``: SIGKILL at
        once, a crash (the logs are recovered on restart). :meth:`stop` still removes everything afterwards.
        """
        with self._lock:
            if self.data_dir is None or self.port is None:
                raise RuntimeError("LocalKafka was never started")
            self._terminate(force=kill)

    def restart(self) -> str:
        """Start the halted broker again on the same ports, data dir and cluster id; waits until it is ready.

        Raises :class:`BrokerStartError` with the log tails if it does not come back (the data dir is kept for
        :meth:`stop`, which removes it as usual).
        """
        with self._lock:
            if self.data_dir is None or self.port is None:
                raise RuntimeError("LocalKafka was never started")
            if self.process is not None:
                raise RuntimeError("LocalKafka is running; halt() it first")
            try:
                self._run_broker(append=True)
                self._wait_ready()
            except BaseException as exc:
                detail = self._failure_log()
                self._terminate(force=True)
                if isinstance(exc, BrokerStartError):
                    raise BrokerStartError(f"{exc}\n{detail}") from None
                raise
            return self.address()

    def _prepare(self) -> None:
        if not (self.libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file() and not any(
            self.libs_dir.glob("kafka_2.13-*.jar")
        ):
            raise BrokerStartError(f"no kafka_2.13 jar in {self.libs_dir}; run fetch_jars() first")
        self._java = java_executable()
        _sweep_stale_data_dirs()
        self.data_dir = Path(tempfile.mkdtemp(prefix=_DATA_DIR_PREFIX))
        if not self.keep_data:
            (self.data_dir / _OWNER_FILE).write_text(f"{os.getpid()}\n")

    # ---------------------------------------------------------------- helpers

    def _java_opts(self) -> list[str]:
        assert self.data_dir is not None
        return [
            *self.heap_opts,
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Xss1m",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.xml'}",
            "-cp",
            str(self.libs_dir.absolute() / "*"),
        ]

    def _launch(self) -> None:
        assert self.data_dir is not None
        java = self._java
        data = self.data_dir
        (data / "logs").mkdir()
        (data / "log4j2.xml").write_bytes(importlib.resources.files(_PACKAGE).joinpath("log4j2.xml").read_bytes())
        secure = self.secure_listeners
        self.port, self.controller_port, *others = free_ports(2 + (len(secure.names) if secure else 0))
        self.secure_ports = dict(zip(secure.names, others, strict=True)) if secure else {}
        props = _server_properties(
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=data / "kraft-logs",
            extra=self.extra_properties,
            secure=secure_properties(secure, self.secure_ports) if secure else None,
        )
        config = data / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

        # 1. format storage (one short-lived JVM, also tied to our lifetime)
        fmt = [java, *self._java_opts(), "kafka.tools.StorageTool", "format"]
        fmt += ["-t", _random_cluster_id(), "-c", str(config)]
        fmt += scram_format_args(secure) if secure else []
        with (data / "logs" / "format.log").open("wb") as out:
            formatter = spawn_bound_to_parent(fmt, out, cwd=data)
        try:
            rc = formatter.wait(timeout=120)
        finally:
            if formatter.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(formatter.pid, signal.SIGKILL)
                formatter.wait()
        if rc != 0:
            raise BrokerStartError(f"kafka.tools.StorageTool format exited with {rc}")

        # 2. the broker itself
        self._run_broker(append=False)

    def _run_broker(self, *, append: bool) -> None:
        assert self.data_dir is not None
        data = self.data_dir
        with (data / "logs" / "console.log").open("ab" if append else "wb") as out:
            self._spawn([self._java, *self._java_opts(), "kafka.Kafka", str(data / "server.properties")], out, cwd=data)

    def _wait_ready(self) -> None:
        assert self.process is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        # Phase 1: TCP accept (cheap; avoids librdkafka "connection refused" log noise).
        while True:
            self._check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BrokerStartError(
                    f"broker port {self.port} not accepting connections after {self.startup_timeout:.0f}s"
                )
            time.sleep(0.1)
        # Phase 2: a real Metadata request that lists this (unfenced) broker.
        admin = AdminClient(admin_conf(self.bootstrap_servers))
        last_error: Exception | None = None
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(
                    f"broker not ready after {self.startup_timeout:.0f}s (last error: {last_error!r})"
                )
            try:
                md = admin.list_topics(timeout=min(2.0, max(remaining, 0.1)))
                if md.brokers:
                    return
            except Exception as exc:
                last_error = exc
            time.sleep(0.1)

    def _check_alive(self) -> None:
        assert self.process is not None
        rc = self.process.poll()
        if rc is not None:
            raise BrokerStartError(f"broker JVM exited early with code {rc}")

    def _cleanup_dir(self) -> None:
        if self.data_dir is not None and not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def _failure_log(self) -> str:
        if self.data_dir is None:
            return ""
        parts = []
        for name in ("format.log", "console.log", "server.log"):
            path = self.data_dir / "logs" / name
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    parts.append(f"--- last {_LOG_TAIL_LINES} lines of {path} ---\n{log_tail(text, _LOG_TAIL_LINES)}")
        return "\n".join(parts) if parts else f"(no broker log in {self.data_dir / 'logs'})"
