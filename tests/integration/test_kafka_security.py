"""The worker and every client helper against authenticated and encrypted listeners of a real broker.

The broker (``secure_kafka``) has SCRAM-SHA-512/256 and PLAIN users on SASL_PLAINTEXT and SASL_SSL, a
mutual-TLS SSL listener, and creates topics on first mention -- so these tests also see whether a client
ever names a topic it must not create.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

from shellwatch.core.pipeline import Pipeline, PipelineConfig
from shellwatch.kafka.admin import KafkaAccessError, PartitionMismatchError, check_partitions, create_topic
from shellwatch.kafka.documents import AlertReader, produce_documents
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.settings import KafkaSettings, Settings
from shellwatch.worker.prefilter.stage import PrefilterConfig, run_prefilter_stage
from shellwatch.worker.prefilter.stats import PrefilterStats
from shellwatch.worker.provision import ensure_worker_topics
from tests.integration.conftest import SecureKafka
from tests.integration.deployment import LIVE, PARTITIONS, Deployment
from tests.integration.test_worker import attack
from tests.pki import CLIENT_KEY_PASSWORD
from tests.shared import offline_alert_ids


def scram_env(secure: SecureKafka, mechanism: str = "SCRAM-SHA-512", password: str | None = None) -> dict[str, str]:
    ((user, real_password),) = secure.users.items()
    return {
        "KAFKA_BOOTSTRAP_SERVERS": secure.broker.secure_bootstrap("SASL_PLAINTEXT"),
        "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "SHELLWATCH_KAFKA_SASL_MECHANISM": mechanism,
        "SHELLWATCH_KAFKA_SASL_USERNAME": user,
        "SHELLWATCH_KAFKA_SASL_PASSWORD": password if password is not None else real_password,
    }


def mtls_env(secure: SecureKafka) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": secure.broker.secure_bootstrap("SSL"),
        "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SSL",
        "SHELLWATCH_KAFKA_SSL_CAFILE": str(secure.pki.ca_cert),
        "SHELLWATCH_KAFKA_SSL_CERTFILE": str(secure.pki.client_cert),
        "SHELLWATCH_KAFKA_SSL_KEYFILE": str(secure.pki.client_key),
        "SHELLWATCH_KAFKA_SSL_KEY_PASSWORD": CLIENT_KEY_PASSWORD,
    }


def sasl_ssl_env(secure: SecureKafka, mechanism: str) -> dict[str, str]:
    return {
        **scram_env(secure, mechanism),
        "KAFKA_BOOTSTRAP_SERVERS": secure.broker.secure_bootstrap("SASL_SSL"),
        "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SHELLWATCH_KAFKA_SSL_CAFILE": str(secure.pki.ca_cert),
    }


def kafka_settings(env: dict[str, str]) -> KafkaSettings:
    return Settings.from_env(env).kafka


@pytest.fixture
def deployment(secure_kafka: SecureKafka, tmp_path: Path) -> Iterator[Deployment]:
    deployed = Deployment(secure_kafka.plaintext, tmp_path)  # topics made over PLAINTEXT, as an operator would
    yield deployed
    deployed.stop()


def topic_names(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def explicit_min_insync(bootstrap: str, topic: str) -> str | None:
    """The topic's own ``min.insync.replicas`` (None when it only inherits the broker's default)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures: Any = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    (entries,) = [f.result(timeout=10) for f in futures.values()]
    entry = entries["min.insync.replicas"]
    return str(entry.value) if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value else None


def test_worker_over_scram_detects_and_creates_its_topics_with_min_insync_replicas(
    secure_kafka: SecureKafka, deployment: Deployment
) -> None:
    env = scram_env(secure_kafka)
    deployment.extra_env = {**env, "SHELLWATCH_MIN_INSYNC_REPLICAS": "1"}
    docs = attack("scram-host", LIVE, LIVE + 700)
    expected = offline_alert_ids(docs)
    worker = deployment.start_worker()
    deployment.wait_ready()
    security = kafka_settings(env).security
    sasl = env["KAFKA_BOOTSTRAP_SERVERS"]
    produce_documents(sasl, docs, network_topic=deployment.network, process_topic=deployment.process, security=security)
    reader = AlertReader(sasl, deployment.alerts, security=security)
    try:
        alerts = reader.read(until=len(expected), timeout_s=60, settle_s=1)
    finally:
        reader.close()
    assert {a["event"]["id"] for a in alerts} == expected, worker.log_tail()
    app_id = deployment.app_id
    created = [f"{app_id}-relevant", deployment.alerts, f"{app_id}-dead-letters", f"{app_id}-sequence-state-changelog"]
    assert {t: explicit_min_insync(deployment.bootstrap, t) for t in created} == dict.fromkeys(created, "1")
    # exactly these topics exist for the deployment: the README's ACL list names them all
    mine = {t for t in topic_names(deployment.bootstrap) if t.startswith(app_id)}
    assert mine == {deployment.network, deployment.process, *created}
    assert worker.stop() == 0
    assert secure_kafka.users["alice"] not in worker.log_path.read_text(errors="replace")


def test_worker_with_a_wrong_password_fails_fast_and_says_why(
    secure_kafka: SecureKafka, deployment: Deployment
) -> None:
    wrong = "not-the-Pw-" + uuid.uuid4().hex[:8]
    env = {**deployment.env(), **scram_env(secure_kafka, password=wrong)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "worker"], env=env, capture_output=True, timeout=120, check=False
    )
    elapsed = time.monotonic() - started
    stderr, stdout = result.stderr.decode(errors="replace"), result.stdout.decode(errors="replace")
    assert result.returncode == 2, stderr
    assert elapsed < 30, f"took {elapsed:.1f}s"
    assert "refusing to start: Kafka authentication failed" in stderr
    assert "SCRAM-SHA-512" in stderr and "invalid credentials" in stderr
    for secret in (wrong, secure_kafka.users["alice"]):
        assert secret not in stderr and secret not in stdout


def test_worker_over_mutual_tls_detects(secure_kafka: SecureKafka, deployment: Deployment) -> None:
    deployment.extra_env = mtls_env(secure_kafka)
    docs = attack("tls-host", LIVE, LIVE + 400)
    worker = deployment.start_worker()
    deployment.produce(docs)
    assert {a["event"]["id"] for a in deployment.alerts_for(2)} == offline_alert_ids(docs), worker.log_tail()
    assert worker.stop() == 0
    assert CLIENT_KEY_PASSWORD not in worker.log_path.read_text(errors="replace")


@pytest.mark.parametrize(
    "listener", ["SASL_PLAINTEXT/SCRAM-SHA-256", "SASL_PLAINTEXT/PLAIN", "SASL_SSL/SCRAM-SHA-512", "SASL_SSL/PLAIN"]
)
def test_every_client_helper_authenticates(secure_kafka: SecureKafka, deployment: Deployment, listener: str) -> None:
    """librdkafka (provisioning, topic creation, produce, read) and aiokafka (the forwarder's admin)."""
    protocol, mechanism = listener.split("/")
    env = scram_env(secure_kafka, mechanism) if protocol == "SASL_PLAINTEXT" else sasl_ssl_env(secure_kafka, mechanism)
    kafka = kafka_settings({**deployment.env(), **env})
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    assert ensure_worker_topics(kafka) == PARTITIONS
    extra = f"{deployment.app_id}-extra"
    create_topic(bootstrap, extra, 1, security=kafka.security)
    counts = asyncio.run(check_partitions(bootstrap, [kafka.relevant_topic, extra], security=kafka.security))
    assert counts == {kafka.relevant_topic: PARTITIONS, extra: 1}
    docs = [{"@timestamp": LIVE, "event": {"category": ["network"]}, "host": {"id": f"h-{listener}"}}]
    assert produce_documents(bootstrap, docs, network_topic=extra, process_topic=extra, security=kafka.security) == 1
    reader = AlertReader(bootstrap, extra, security=kafka.security)
    try:
        assert [d["host"]["id"] for d in reader.read(until=1, timeout_s=30)] == [f"h-{listener}"]
    finally:
        reader.close()


def test_an_untrusted_broker_certificate_is_refused(secure_kafka: SecureKafka, deployment: Deployment) -> None:
    env = {**mtls_env(secure_kafka), "SHELLWATCH_KAFKA_SSL_CAFILE": str(secure_kafka.pki.other_ca_cert)}
    with pytest.raises(KafkaAccessError, match=r"TLS handshake failed at 127\.0\.0\.1:\d+ \(security protocol SSL\)"):
        ensure_worker_topics(kafka_settings({**deployment.env(), **env}), timeout_s=10)


def test_missing_input_topics_are_refused_never_created(
    secure_kafka: SecureKafka, deployment: Deployment, tmp_path: Path
) -> None:
    """On a broker that creates topics on first mention, neither stage ever names a missing input."""
    absent = f"{deployment.app_id}-absent-process"
    env = {**deployment.env(), **scram_env(secure_kafka), "SHELLWATCH_PROCESS_TOPIC": absent}
    result = subprocess.run(
        [sys.executable, "-m", "shellwatch", "worker"], env=env, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 2
    assert f"refusing to start: input topic(s) missing: {absent}" in result.stderr.decode()
    kafka = kafka_settings(env)
    config = PrefilterConfig(
        bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        source_topics=((deployment.network, ("network",)), (absent, ("process",))),
        relevant_topic=kafka.relevant_topic,
        dead_letter_topic=kafka.dead_letter_topic,
        group_id=f"{deployment.app_id}-prefilter",
        security=kafka.security,
    )
    prefilter = Pipeline(load_reverse_shell_rule(), PipelineConfig()).prefilter
    with pytest.raises(PartitionMismatchError, match=f"{absent}=missing"):
        asyncio.run(run_prefilter_stage(config, prefilter, asyncio.Event(), PrefilterStats()))
    assert absent not in topic_names(deployment.bootstrap)
