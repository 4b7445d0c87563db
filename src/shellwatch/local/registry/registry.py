"""Build (with Maven, cached) and run a throw-away Apicurio Registry with a Confluent-compatible API.

The registry is Apicurio Registry 2.4.2.Final packaged as a Quarkus uber-jar by the build
project next to this module (``pom.xml`` + ``java/``), with in-memory H2 storage; its
Confluent Schema Registry API lives under ``/apis/ccompat/v7``.  Nothing here runs at import
time.  The JVM is bound to the starting thread like the local Kafka broker (see
:func:`shellwatch.local.kafka.broker.spawn_bound_to_parent`), and stopped on interpreter exit.
"""

from __future__ import annotations

import fcntl
import importlib.resources
import json
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from importlib.resources.abc import Traversable
from pathlib import Path

from shellwatch.errors import RegistryBuildError, RegistryError, RegistryStartError
from shellwatch.local.kafka.jars import CACHE_ENV_VAR, java_executable, log_tail, run_maven
from shellwatch.local.kafka.jvm import JvmService
from shellwatch.local.ports import free_port

__all__ = [
    "APICURIO_VERSION",
    "LocalRegistry",
    "RegistryBuildError",
    "RegistryError",
    "RegistryStartError",
    "build_registry",
    "register_schema",
    "registry_jar_path",
]

APICURIO_VERSION = "2.4.2"
"""Apicurio Registry version (``io.apicurio:apicurio-registry-app:<version>.Final``) built by ``pom.xml``."""

CCOMPAT_PATH = "/apis/ccompat/v7"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
JAR_NAME = "registry-runner.jar"
MARKER_NAME = ".shellwatch-complete"
_PACKAGE = "shellwatch.local.registry"
_TAIL_LINES = 40
_MVN_ARGS = (
    "-B",
    "-q",
    "-Dstyle.color=never",
    "package",
    "-DskipTests",
    "-Dquarkus.package.type=uber-jar",
    "-Dquarkus.index-dependency.app.group-id=io.apicurio",
    "-Dquarkus.index-dependency.app.artifact-id=apicurio-registry-app",
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ build


def registry_jar_path(cache_root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/apicurio-<version>/registry-runner.jar``.

    ``root`` is *cache_root* if given, else ``$SHELLWATCH_KAFKA_CACHE`` (read now, at call
    time), else ``~/.cache/shellwatch``.
    """
    if cache_root is None:
        env = os.environ.get(CACHE_ENV_VAR)
        root = Path(env) if env else Path.home() / ".cache" / "shellwatch"
    else:
        root = Path(cache_root)
    return root.expanduser().absolute() / f"apicurio-{APICURIO_VERSION}" / JAR_NAME


def _is_complete(jar: Path) -> bool:
    return (jar.parent / MARKER_NAME).is_file() and jar.is_file()


def _copy_tree(src: Traversable, dest: Path) -> None:
    """Copy the packaged build project (pom.xml + java/) out of the package resources."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_dir():
            if item.name != "__pycache__":
                _copy_tree(item, dest / item.name)
        elif item.name == "pom.xml" or item.name.endswith(".java"):
            (dest / item.name).write_bytes(item.read_bytes())


def build_registry(cache_root: str | os.PathLike[str] | None = None) -> Path:
    """Build the Apicurio runner jar once and return its cached path (see :func:`registry_jar_path`).

    Idempotent: returns at once when the completion marker and the jar exist.  The build runs
    in a temporary copy of the build project; the jar is copied next to its final name, renamed
    into place, then marked complete.  Concurrent callers serialise on a lock file.  Raises
    :class:`RegistryBuildError` (with the tail of Maven's output) on failure.  A cold build
    (empty ``~/.m2``) takes about 2.5 minutes.
    """
    jar = registry_jar_path(cache_root)
    if _is_complete(jar):
        return jar

    mvn = shutil.which("mvn")
    if mvn is None:
        raise RegistryBuildError("`mvn` (Apache Maven) not found on PATH; it is needed to build the registry")
    try:
        java_executable()
    except RuntimeError as exc:
        raise RegistryBuildError(str(exc)) from exc

    cache_dir = jar.parent
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".build.lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _is_complete(jar):  # another process finished while we waited
            return jar
        (cache_dir / MARKER_NAME).unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="shellwatch-apicurio-build-") as work_str:
            work = Path(work_str)
            _copy_tree(importlib.resources.files(_PACKAGE), work)
            cmd = [mvn, "-f", str(work / "pom.xml"), *_MVN_ARGS]
            log.info("building Apicurio Registry %s runner jar into %s", APICURIO_VERSION, jar)
            t0 = time.monotonic()
            run_maven(
                cmd, cwd=work, what=f"mvn package (Apicurio Registry {APICURIO_VERSION})", error=RegistryBuildError
            )
            runners = sorted((work / "target").glob("*-runner.jar"))
            if len(runners) != 1:
                found = sorted(p.name for p in (work / "target").glob("*")) if (work / "target").is_dir() else []
                raise RegistryBuildError(f"mvn succeeded but no single *-runner.jar in target/; got: {found}")
            staging = cache_dir / f".{JAR_NAME}.partial-{os.getpid()}"
            try:
                shutil.copyfile(runners[0], staging)
                staging.replace(jar)
            finally:
                staging.unlink(missing_ok=True)
        (cache_dir / MARKER_NAME).write_text(
            f"apicurio-registry {APICURIO_VERSION}.Final\n{JAR_NAME} {jar.stat().st_size} bytes\n"
            f"built in {time.monotonic() - t0:.0f}s\n"
        )
    return jar


# ------------------------------------------------------------------------------------------------- HTTP


def _request(url: str, *, data: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Accept", CONTENT_TYPE)
    if data is not None:
        req.add_header("Content-Type", CONTENT_TYPE)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def register_schema(url: str, subject: str, schema_json: str, *, timeout: float = 10.0) -> int:
    """Register *schema_json* (an Avro schema as JSON text) under *subject*; return its global id.

    *url* is the Confluent-compatible base URL, e.g. ``http://127.0.0.1:PORT/apis/ccompat/v7``.
    Registering an identical schema again returns the same id.
    """
    target = f"{url.rstrip('/')}/subjects/{urllib.parse.quote(subject, safe='')}/versions"
    body = json.dumps({"schema": schema_json}).encode()
    status, payload = _request(target, data=body, timeout=timeout)
    if status != 200:
        raise RegistryError(f"POST {target} -> HTTP {status}: {payload[:500].decode(errors='replace')}")
    answer = json.loads(payload)
    if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
        raise RegistryError(f"POST {target}: unexpected answer {payload[:500].decode(errors='replace')}")
    schema_id: int = answer["id"]
    return schema_id


# ---------------------------------------------------------------------------------------------- process


class LocalRegistry(JvmService):
    """An Apicurio Registry JVM on 127.0.0.1 (in-memory storage), lifetime bound to this thread.

    >>> with LocalRegistry(build_registry()) as registry:   # doctest: +SKIP
    ...     register_schema(registry.url, "t-value", '"string"')
    """

    start_error = RegistryStartError
    label = "local registry"

    def __init__(
        self,
        jar: str | os.PathLike[str],
        *,
        startup_timeout: float = 90.0,
        stop_timeout: float = 15.0,
        heap_opts: tuple[str, ...] = ("-Xmx384m",),
    ) -> None:
        super().__init__(stop_timeout=stop_timeout)
        self.jar = Path(jar)
        self.startup_timeout = startup_timeout
        self.heap_opts = heap_opts
        self.port: int | None = None
        self.work_dir: Path | None = None
        self._java = ""

    @property
    def url(self) -> str:
        """Confluent-compatible base URL, ``http://127.0.0.1:PORT/apis/ccompat/v7``."""
        if self.port is None or self.process is None:
            raise RuntimeError("LocalRegistry is not running")
        return f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}"

    def address(self) -> str:
        return self.url

    def _prepare(self) -> None:
        if not self.jar.is_file():
            raise RegistryStartError(f"registry jar {self.jar} missing; run build_registry() first")
        try:
            self._java = java_executable()
        except RuntimeError as exc:
            raise RegistryStartError(str(exc)) from exc
        self.work_dir = Path(tempfile.mkdtemp(prefix="shellwatch-registry-"))

    def _launch(self) -> None:
        assert self.work_dir is not None
        java = self._java
        self.port = free_port()
        cmd = [
            java,
            *self.heap_opts,
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={self.port}",
            "-jar",
            str(self.jar.absolute()),
        ]
        with (self.work_dir / "console.log").open("wb") as out:
            self._spawn(cmd, out, cwd=self.work_dir)

    def _wait_ready(self) -> None:
        assert self.process is not None and self.port is not None
        probe = f"http://127.0.0.1:{self.port}{CCOMPAT_PATH}/subjects"
        deadline = time.monotonic() + self.startup_timeout
        last: str = "no answer yet"
        while True:
            rc = self.process.poll()
            if rc is not None:
                raise RegistryStartError(f"registry JVM exited early with code {rc}")
            try:
                status, _ = _request(probe, timeout=2.0)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except (OSError, ValueError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RegistryStartError(f"registry not ready after {self.startup_timeout:.0f}s (last: {last})")
            time.sleep(0.2)

    def _cleanup_dir(self) -> None:
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None

    def _failure_log(self) -> str:
        if self.work_dir is None:
            return ""
        path = self.work_dir / "console.log"
        try:
            text = path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        if not text:
            return f"(no registry output in {path})"
        return f"--- last {_TAIL_LINES} lines of {path} ---\n{log_tail(text, _TAIL_LINES)}"
