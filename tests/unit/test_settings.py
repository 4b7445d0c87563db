from __future__ import annotations

from pathlib import Path

import pytest

from shellwatch.core.pipeline import PipelineConfig
from shellwatch.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({"BROKER_URL": "kafka://elsewhere:9092", "WEB_PORT": "tcp://10.0.0.1:80"})
    assert settings == Settings()
    assert settings.pipeline == PipelineConfig()


def test_prefixed_variables() -> None:
    settings = Settings.from_env(
        {
            "SHELLWATCH_ALLOWED_LATENESS_MS": "250",
            "SHELLWATCH_PREFILTER": "off",
            "SHELLWATCH_MASK_SECRETS": "false",
            "SHELLWATCH_RULE_FILE": "/etc/shellwatch/rule.toml",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        }
    )
    assert settings.pipeline.allowed_lateness_ms == 250
    assert not settings.pipeline.prefilter_enabled and not settings.pipeline.mask_secrets
    assert settings.rule_file == Path("/etc/shellwatch/rule.toml")
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.source_topics() == (
        ("logs-endpoint.events.network", ("network",)),
        ("logs-endpoint.events.process", ("process",)),
    )
    mixed = Settings.from_env({"SHELLWATCH_MIXED_TOPIC": "endpoint", "SHELLWATCH_APP_ID": "sw-eu"}).kafka
    assert mixed.source_topics() == (("endpoint", ("network", "process")),)
    assert mixed.source_topics(("network", "process", "file")) == (("endpoint", ("network", "process", "file")),)
    assert mixed.relevant_topic == "sw-eu-relevant"
    assert Settings.from_env({"SHELLWATCH_ALERT_FORMAT": "Avro"}).kafka.alert_format == "avro"
    assert Settings().kafka.alert_format == "json"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SHELLWATCH_ALLOWED_LATENESS_MS": "soon"}, "SHELLWATCH_ALLOWED_LATENESS_MS"),
        ({"SHELLWATCH_MAX_HOSTS": "0"}, "SHELLWATCH_MAX_HOSTS"),
        ({"SHELLWATCH_PREFILTER": "maybe"}, "SHELLWATCH_PREFILTER"),
        ({"SHELLWATCH_ALERTS_TOPIC": " "}, "SHELLWATCH_ALERTS_TOPIC"),
        ({"SHELLWATCH_WEB_PORT": "x"}, "SHELLWATCH_WEB_PORT"),
        ({"SHELLWATCH_ALERT_FORMAT": "xml"}, "SHELLWATCH_ALERT_FORMAT"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_health_thresholds() -> None:
    assert Settings().health.silent_partition_s == 300 and Settings().health.stall_s == 60
    health = Settings.from_env({"SHELLWATCH_SILENT_PARTITION_S": "30", "SHELLWATCH_STALL_S": "5"}).health
    assert (health.silent_partition_s, health.stall_s) == (30, 5)
    with pytest.raises(SettingsError, match="SHELLWATCH_STALL_S"):
        Settings.from_env({"SHELLWATCH_STALL_S": "0"})
    with pytest.raises(SettingsError, match="SHELLWATCH_SILENT_PARTITION_S"):
        Settings.from_env({"SHELLWATCH_SILENT_PARTITION_S": "soon"})


def test_group_membership_and_fetch_settings() -> None:
    defaults = Settings.from_env({}).kafka
    assert (defaults.session_timeout_ms, defaults.heartbeat_interval_ms) == (6_000, 1_500)
    assert defaults.max_partition_fetch_bytes == 1_048_576
    assert defaults.alignment_idle_ms == 500
    kafka = Settings.from_env(
        {
            "SHELLWATCH_SESSION_TIMEOUT_MS": "10000",
            "SHELLWATCH_HEARTBEAT_INTERVAL_MS": "2000",
            "SHELLWATCH_MAX_PARTITION_FETCH_BYTES": "8388608",
            "SHELLWATCH_MAX_BUFFERED_PER_PARTITION": "500",
            "SHELLWATCH_ALIGNMENT_IDLE_MS": "0",
        }
    ).kafka
    assert kafka.alignment_idle_ms == 0
    assert (kafka.session_timeout_ms, kafka.heartbeat_interval_ms) == (10_000, 2_000)
    assert (kafka.max_partition_fetch_bytes, kafka.max_buffered_per_partition) == (8_388_608, 500)
    with pytest.raises(SettingsError, match="HEARTBEAT_INTERVAL_MS"):
        Settings.from_env({"SHELLWATCH_SESSION_TIMEOUT_MS": "6000", "SHELLWATCH_HEARTBEAT_INTERVAL_MS": "3000"})
    with pytest.raises(SettingsError, match="ALIGNMENT_IDLE_MS"):
        Settings.from_env({"SHELLWATCH_ALIGNMENT_IDLE_MS": "-1"})
    with pytest.raises(SettingsError, match="SESSION_TIMEOUT_MS: must be >= 6000"):
        Settings.from_env({"SHELLWATCH_SESSION_TIMEOUT_MS": "1000"})


def test_other_inputs_read_their_topics() -> None:
    """An input an operator's rule adds (a ``file where`` stage) is read from Elastic Defend's data stream of that
    category, or from the topic SHELLWATCH_INPUT_TOPICS names; inputs sharing a topic are read once."""
    inputs = ("network", "process", "file", "library", "registry")
    kafka = Settings.from_env({"SHELLWATCH_INPUT_TOPICS": " library = edr-other ,registry=edr-other"}).kafka
    assert kafka.source_topics(inputs) == (
        ("logs-endpoint.events.network", ("network",)),
        ("logs-endpoint.events.process", ("process",)),
        ("logs-endpoint.events.file", ("file",)),
        ("edr-other", ("library", "registry")),
    )
    assert kafka.topic_of("file") == "logs-endpoint.events.file"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("file", "expected category=topic pairs"),
        ("file=", "expected category=topic pairs"),
        ("fi le=x", "expected category=topic pairs"),
        ("file=a b", "expected category=topic pairs"),
        ("network=x", "SHELLWATCH_NETWORK_TOPIC"),
        ("file=a,file=b", "file is named twice"),
    ],
)
def test_input_topics_are_validated(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"SHELLWATCH_INPUT_TOPICS": value})
