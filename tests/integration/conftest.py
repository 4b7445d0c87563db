"""Fixtures for tests that need a real Kafka broker.

``KAFKA_BOOTSTRAP_SERVERS`` set -> use that cluster; otherwise the Kafka jars are fetched
with Maven (cached, see ``shellwatch.local.kafka``) and one local KRaft broker runs for the
whole session.  If it cannot be started the fixture raises: the tests fail, never skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shellwatch.local.kafka import LocalKafka, fetch_jars, jars_dir
from shellwatch.local.kafka.listeners import SecureListeners
from tests.pki import Pki, make_pki

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    """Cached Kafka jars (fetched on first use; $SHELLWATCH_KAFKA_CACHE overrides the cache root)."""
    return fetch_jars(jars_dir(os.environ.get("SHELLWATCH_KAFKA_CACHE") or None))


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external
        return
    libs = Path(request.getfixturevalue("kafka_libs"))
    broker = LocalKafka(libs)
    request.addfinalizer(broker.stop)  # registered before start(): runs even if start() is interrupted
    t0 = time.monotonic()
    bootstrap = broker.start()
    print(f"\n[localkafka] broker {bootstrap} ready in {time.monotonic() - t0:.1f}s (pid {broker.pid})")
    yield bootstrap


@pytest.fixture
def topic_name() -> str:
    return f"it-{uuid.uuid4().hex}"


@pytest.fixture
def unique_group() -> str:
    return f"it-group-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def schema_registry_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Confluent-compatible schema registry base URL (``.../apis/ccompat/v7`` locally).

    ``SCHEMA_REGISTRY_URL`` set -> used as is; otherwise an Apicurio Registry runner jar is built
    with Maven (cached, see ``shellwatch.local.registry``) and run for the session.  Raises on failure.
    """
    external = os.environ.get("SCHEMA_REGISTRY_URL", "").strip()
    if external:
        yield external
        return
    from shellwatch.local.registry import LocalRegistry, build_registry  # noqa: PLC0415 -- appended fixture

    registry = LocalRegistry(build_registry())
    request.addfinalizer(registry.stop)  # registered before start(): runs even if start() is interrupted
    t0 = time.monotonic()
    url = registry.start()
    print(f"\n[localregistry] registry {url} ready in {time.monotonic() - t0:.1f}s (pid {registry.pid})")
    yield url


SASL_USERS = {"alice": "alice-Pw-7f3c91"}  # a distinctive password: tests assert it never shows in any output


@dataclass(frozen=True)
class SecureKafka:
    """A second local broker with SASL_PLAINTEXT, SSL (mutual) and SASL_SSL listeners for the security tests.

    It creates topics automatically on first mention (``auto.create.topics.enable=true``, Kafka's own
    default), so a test can tell whether a client ever named a topic it should not create.
    """

    broker: LocalKafka
    pki: Pki
    users: dict[str, str]

    @property
    def plaintext(self) -> str:
        return self.broker.bootstrap_servers


@pytest.fixture(scope="session")
def secure_kafka(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SecureKafka:
    """Started on first use (only the security tests pay for it); raises, never skips, when it cannot start."""
    pki = make_pki(tmp_path_factory.mktemp("kafka-pki"))
    libs = Path(request.getfixturevalue("kafka_libs"))
    broker = LocalKafka(
        libs,
        heap_opts=("-Xms128m", "-Xmx384m"),
        extra_properties={"auto.create.topics.enable": "true"},
        secure_listeners=SecureListeners(SASL_USERS, pki.broker),
    )
    request.addfinalizer(broker.stop)  # registered before start(): runs even if start() is interrupted
    t0 = time.monotonic()
    broker.start()
    print(f"\n[localkafka] secure broker {broker.secure_ports} ready in {time.monotonic() - t0:.1f}s")
    return SecureKafka(broker, pki, dict(SASL_USERS))
