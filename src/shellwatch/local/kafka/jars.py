"""Fetching the Apache Kafka jars from Maven Central with Maven, cached (nothing runs at import)."""

from __future__ import annotations

import fcntl
import importlib.resources
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from shellwatch.errors import KafkaFetchError

__all__ = [
    "CACHE_ENV_VAR",
    "KAFKA_VERSION",
    "KafkaFetchError",
    "fetch_jars",
    "jars_dir",
    "java_executable",
    "log_tail",
    "run_maven",
]

KAFKA_VERSION = "4.1.1"
"""Apache Kafka version fetched from Maven Central (``org.apache.kafka:kafka_2.13``)."""

CACHE_ENV_VAR = "SHELLWATCH_KAFKA_CACHE"
"""If set, replaces ``~/.cache/shellwatch`` as the cache root (read by :func:`jars_dir` when called)."""

MARKER_NAME = ".shellwatch-complete"
_PACKAGE = "shellwatch.local.kafka"
_MVN_TAIL_LINES = 40

log = logging.getLogger(__name__)


def jars_dir(cache_root: str | os.PathLike[str] | None = None, version: str = KAFKA_VERSION) -> Path:
    """Directory holding the Kafka jars: ``<root>/kafka-<version>/libs``.

    ``root`` is *cache_root* if given, else ``$SHELLWATCH_KAFKA_CACHE`` (read now, at
    call time), else ``~/.cache/shellwatch``.
    """
    if cache_root is None:
        env = os.environ.get(CACHE_ENV_VAR)
        root = Path(env) if env else Path.home() / ".cache" / "shellwatch"
    else:
        root = Path(cache_root)
    return root.expanduser() / f"kafka-{version}" / "libs"


def _is_complete(libs: Path, version: str) -> bool:
    return (libs / MARKER_NAME).is_file() and (libs / f"kafka_2.13-{version}.jar").is_file()


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def log_tail(text: str, lines: int) -> str:
    """Last *lines* lines of *text*, without ANSI colour codes (Maven 3.8 emits some even with -B)."""
    return "\n".join(_ANSI_ESCAPE.sub("", text).splitlines()[-lines:])


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise KafkaFetchError("`java` not found (set JAVA_HOME or put java on PATH; Java 17+ needed)")
    return found


def run_maven(cmd: list[str], *, cwd: Path, what: str, error: type[Exception]) -> None:
    """Run a Maven command; on failure raise ``error`` naming ``what`` with the tail of Maven's output."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise error(f"could not run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        output = log_tail((proc.stdout or "") + (proc.stderr or ""), _MVN_TAIL_LINES)
        raise error(f"{what} failed with exit code {proc.returncode}:\n{output}")


def fetch_jars(cache_dir: str | os.PathLike[str] | None = None, *, version: str = KAFKA_VERSION) -> Path:
    """Download Kafka *version* and its runtime closure into *cache_dir* (default :func:`jars_dir`).

    Idempotent: returns immediately when the completion marker is present.  The copy is
    made into a sibling temporary directory, marked complete, then renamed into place, so
    an interrupted download never looks complete.  Concurrent callers serialise on a lock
    file.  Raises :class:`KafkaFetchError` (with the tail of Maven's output) on failure.
    """
    libs = Path(cache_dir) if cache_dir is not None else jars_dir(version=version)
    libs = libs.expanduser().absolute()
    if _is_complete(libs, version):
        return libs

    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaFetchError("`mvn` (Apache Maven) not found on PATH; it is needed to fetch the Kafka jars")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise KafkaFetchError("`java` not found (set JAVA_HOME or put java on PATH); Maven needs it")

    libs.parent.mkdir(parents=True, exist_ok=True)
    lock_path = libs.parent / f".{libs.name}.lock"
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _is_complete(libs, version):  # another process finished while we waited
            return libs
        staging = Path(tempfile.mkdtemp(prefix=f".{libs.name}.partial-", dir=libs.parent))
        try:
            with tempfile.TemporaryDirectory(prefix="shellwatch-mvn-") as work:
                pom = Path(work) / "pom.xml"
                pom.write_bytes(importlib.resources.files(_PACKAGE).joinpath("pom.xml").read_bytes())
                cmd = [
                    mvn,
                    "-B",
                    "-q",
                    "-Dstyle.color=never",
                    "-f",
                    str(pom),
                    f"-Dkafka.version={version}",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={staging}",
                ]
                log.info("fetching Kafka %s jars into %s", version, libs)
                run_maven(
                    cmd,
                    cwd=Path(work),
                    what=f"mvn dependency:copy-dependencies for org.apache.kafka:kafka_2.13:{version}",
                    error=KafkaFetchError,
                )
            if not (staging / f"kafka_2.13-{version}.jar").is_file():
                raise KafkaFetchError(
                    f"mvn succeeded but kafka_2.13-{version}.jar is missing from {staging}; "
                    f"got: {sorted(p.name for p in staging.iterdir())}"
                )
            jars = sorted(p.name for p in staging.glob("*.jar"))
            (staging / MARKER_NAME).write_text("\n".join(jars) + "\n")
            if libs.exists():  # incomplete leftover from an earlier, interrupted layout
                shutil.rmtree(libs)
            staging.rename(libs)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return libs
