"""The one frozen settings object; the only reader of the environment (``SHELLWATCH_*``).

Built once in ``__main__`` and passed down. Invalid values stop the program with the variable named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from shellwatch.core.pipeline import INPUTS, PipelineConfig
from shellwatch.errors import SettingsError
from shellwatch.formats.alert_codec import AlertFormat
from shellwatch.kafka.security import (
    SASL_MECHANISMS,
    SECURITY_PROTOCOLS,
    KafkaSecurity,
    Secret,
    SecurityConfigError,
    validate,
)

__all__ = [
    "ENV_PREFIX",
    "OTHER_INPUT_TOPIC_PREFIX",
    "SECURITY_VARIABLES",
    "HealthSettings",
    "KafkaSettings",
    "Settings",
    "SettingsError",
]

ENV_PREFIX = "SHELLWATCH_"
# the topic of another input (event category) that no SHELLWATCH_INPUT_TOPICS entry names: Elastic Defend's
# data stream of that category (logs-endpoint.events.file ...), as the network and process defaults are
OTHER_INPUT_TOPIC_PREFIX: Final = "logs-endpoint.events."
_CATEGORY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOPIC: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(ENV_PREFIX + name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{ENV_PREFIX}{name}: expected true/false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(ENV_PREFIX + name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{ENV_PREFIX}{name}: must be >= {minimum}, got {value}")
    return value


def _alert_format(env: Mapping[str, str]) -> AlertFormat:
    value = env.get(ENV_PREFIX + "ALERT_FORMAT", "json").strip().lower()
    if value == "json":
        return "json"
    if value == "avro":
        return "avro"
    raise SettingsError(f"{ENV_PREFIX}ALERT_FORMAT: expected json or avro, got {value!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(ENV_PREFIX + name, "").strip()
    return Path(value) if value else None


def _input_topics(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``SHELLWATCH_INPUT_TOPICS``: ``category=topic`` pairs, comma-separated, for inputs besides network/process."""
    name = ENV_PREFIX + "INPUT_TOPICS"
    pairs: dict[str, str] = {}
    for item in env.get(name, "").split(","):
        if not item.strip():
            continue
        category, sep, topic = (part.strip() for part in item.partition("="))
        if not sep or not _CATEGORY.fullmatch(category) or not _TOPIC.fullmatch(topic):
            raise SettingsError(f"{name}: expected category=topic pairs (file=logs-endpoint.events.file), got {item!r}")
        if category in INPUTS:
            raise SettingsError(f"{name}: {category} is read from {ENV_PREFIX}{category.upper()}_TOPIC")
        if category in pairs:
            raise SettingsError(f"{name}: {category} is named twice")
        pairs[category] = topic
    return tuple(pairs.items())


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(ENV_PREFIX + name, default).strip()
    if not value:
        raise SettingsError(f"{ENV_PREFIX}{name}: must not be empty")
    return value


_SECURITY_VARIABLES = {  # KafkaSecurity field -> variable (without the prefix)
    "protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_username": "KAFKA_SASL_USERNAME",
    "sasl_password": "KAFKA_SASL_PASSWORD",
    "ssl_cafile": "KAFKA_SSL_CAFILE",
    "ssl_certfile": "KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "KAFKA_SSL_KEYFILE",
    "ssl_key_password": "KAFKA_SSL_KEY_PASSWORD",
}


_Option = TypeVar("_Option", bound=str)


def _choice(name: str, raw: str, options: tuple[_Option, ...]) -> _Option:
    value = raw.strip().upper()
    for option in options:
        if option == value:
            return option
    raise SettingsError(f"{ENV_PREFIX}{name}: expected one of {', '.join(options)}, got {raw.strip()!r}")


def _kafka_security(env: Mapping[str, str]) -> KafkaSecurity:
    """The security settings, validated (required companions present, TLS files load); never echoes secrets."""

    def raw(name: str) -> str | None:
        value = env.get(ENV_PREFIX + _SECURITY_VARIABLES[name], "")
        return value if value.strip() else None

    protocol = _choice("KAFKA_SECURITY_PROTOCOL", raw("protocol") or "PLAINTEXT", SECURITY_PROTOCOLS)
    mechanism_raw = raw("sasl_mechanism")
    mechanism = _choice("KAFKA_SASL_MECHANISM", mechanism_raw, SASL_MECHANISMS) if mechanism_raw else None
    password, key_password = raw("sasl_password"), raw("ssl_key_password")  # kept verbatim: spaces may matter
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=(raw("sasl_username") or "").strip() or None,
        sasl_password=Secret(password) if password is not None else None,
        ssl_cafile=_path(env, _SECURITY_VARIABLES["ssl_cafile"]),
        ssl_certfile=_path(env, _SECURITY_VARIABLES["ssl_certfile"]),
        ssl_keyfile=_path(env, _SECURITY_VARIABLES["ssl_keyfile"]),
        ssl_key_password=Secret(key_password) if key_password is not None else None,
    )
    try:
        validate(security)
    except SecurityConfigError as exc:
        raise SettingsError(f"{ENV_PREFIX}{_SECURITY_VARIABLES[exc.field]}: {exc.message}") from None
    return security


SECURITY_VARIABLES = frozenset(ENV_PREFIX + name for name in _SECURITY_VARIABLES.values())


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """Where the worker reads and writes. Input topics are keyed by ``host.id`` and co-partitioned."""

    bootstrap_servers: str | None = None
    app_id: str = "shellwatch"
    network_topic: str = "logs-endpoint.events.network"
    process_topic: str = "logs-endpoint.events.process"
    mixed_topic: str | None = None  # one topic with every input, routed by event.category
    # (category, topic) of the other inputs an operator's rule may read; unnamed ones: OTHER_INPUT_TOPIC_PREFIX
    input_topics: tuple[tuple[str, str], ...] = ()
    alerts_topic: str = "shellwatch-alerts"
    dead_letter_topic: str = "shellwatch-dead-letters"
    replication_factor: int = 1
    min_insync_replicas: int | None = None  # min.insync.replicas of the topics the worker creates; None: broker's
    web_enabled: bool = True
    web_port: int = 6066
    data_dir: Path | None = None
    alert_format: AlertFormat = "json"
    schema_registry_url: str | None = None  # Confluent-compatible API, for registry-framed Avro input
    security: KafkaSecurity = field(default_factory=KafkaSecurity)  # repr masks the secrets
    # group membership of both stages: a killed member's partitions move after the session timeout (6 s is the
    # broker's default minimum); a heartbeat every 1.5 s lets the others learn of the rebalance soon after
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 1_500
    max_partition_fetch_bytes: int = 1_048_576  # per source partition and fetch, in the prefilter stage
    max_buffered_per_partition: int = 20_000  # kept records waiting for the record-time merge, per partition
    # the merge waits this long for a caught-up partner before it releases a record without it (max.task.idle.ms)
    alignment_idle_ms: int = 500

    def __post_init__(self) -> None:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise SettingsError(
                f"{ENV_PREFIX}HEARTBEAT_INTERVAL_MS ({self.heartbeat_interval_ms}) must be at most a third of "
                f"{ENV_PREFIX}SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )

    @property
    def created_topic_configs(self) -> dict[str, str]:
        """Configs every topic the worker creates gets (besides its replication factor)."""
        if self.min_insync_replicas is None:
            return {}
        return {"min.insync.replicas": str(self.min_insync_replicas)}

    @property
    def relevant_topic(self) -> str:
        """The internal topic the pre-filter stage feeds to the correlation agent."""
        return f"{self.app_id}-relevant"

    def topic_of(self, kind: str) -> str:
        """The topic input ``kind`` (an event category) is read from."""
        if self.mixed_topic is not None:
            return self.mixed_topic
        if kind == "network":
            return self.network_topic
        if kind == "process":
            return self.process_topic
        return dict(self.input_topics).get(kind, OTHER_INPUT_TOPIC_PREFIX + kind)

    def source_topics(self, inputs: Sequence[str] = INPUTS) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each topic the worker reads for ``inputs`` (see :func:`~shellwatch.core.pipeline.worker_inputs`), with
        the inputs it carries, in the order of ``inputs``."""
        carried: dict[str, list[str]] = {}
        for kind in inputs:
            carried.setdefault(self.topic_of(kind), []).append(kind)
        return tuple((topic, tuple(kinds)) for topic, kinds in carried.items())

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSettings:
        defaults = cls()
        mixed = env.get(ENV_PREFIX + "MIXED_TOPIC", "").strip() or None
        data_dir = env.get(ENV_PREFIX + "DATA_DIR", "").strip()
        replication_factor = _int(env, "REPLICATION_FACTOR", defaults.replication_factor, 1)
        min_insync = _int(env, "MIN_INSYNC_REPLICAS", 0, 1) if env.get(ENV_PREFIX + "MIN_INSYNC_REPLICAS") else None
        if min_insync is not None and min_insync > replication_factor:
            raise SettingsError(
                f"{ENV_PREFIX}MIN_INSYNC_REPLICAS: {min_insync} exceeds {ENV_PREFIX}REPLICATION_FACTOR "
                f"{replication_factor}: no write could ever be acknowledged"
            )
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None,
            app_id=_text(env, "APP_ID", defaults.app_id),
            network_topic=_text(env, "NETWORK_TOPIC", defaults.network_topic),
            process_topic=_text(env, "PROCESS_TOPIC", defaults.process_topic),
            mixed_topic=mixed,
            input_topics=_input_topics(env),
            alerts_topic=_text(env, "ALERTS_TOPIC", defaults.alerts_topic),
            dead_letter_topic=_text(env, "DEAD_LETTER_TOPIC", defaults.dead_letter_topic),
            replication_factor=replication_factor,
            min_insync_replicas=min_insync,
            web_enabled=_flag(env, "WEB_ENABLED", defaults.web_enabled),
            web_port=_int(env, "WEB_PORT", defaults.web_port, 1),
            data_dir=Path(data_dir) if data_dir else None,
            alert_format=_alert_format(env),
            schema_registry_url=env.get(ENV_PREFIX + "SCHEMA_REGISTRY_URL", "").strip() or None,
            security=_kafka_security(env),
            session_timeout_ms=_int(env, "SESSION_TIMEOUT_MS", defaults.session_timeout_ms, 6_000),
            heartbeat_interval_ms=_int(env, "HEARTBEAT_INTERVAL_MS", defaults.heartbeat_interval_ms, 100),
            max_partition_fetch_bytes=_int(env, "MAX_PARTITION_FETCH_BYTES", defaults.max_partition_fetch_bytes, 1_024),
            max_buffered_per_partition=_int(env, "MAX_BUFFERED_PER_PARTITION", defaults.max_buffered_per_partition, 1),
            alignment_idle_ms=_int(env, "ALIGNMENT_IDLE_MS", defaults.alignment_idle_ms, 0),
        )


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Thresholds of the worker's ``/metrics``, ``/healthz`` and ``/readyz`` (see :mod:`shellwatch.worker.health`)."""

    silent_partition_s: int = 300  # an assigned input partition without a record this long counts as silent
    stall_s: int = 60  # a started stage without progress this long (while it has work) is not live

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HealthSettings:
        defaults = cls()
        return cls(
            silent_partition_s=_int(env, "SILENT_PARTITION_S", defaults.silent_partition_s, 1),
            stall_s=_int(env, "STALL_S", defaults.stall_s, 1),
        )


@dataclass(frozen=True, slots=True)
class Settings:
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    rule_file: Path | None = None
    shell_rule_file: Path | None = None
    allowlist_file: Path | None = None
    rules_paths: tuple[Path, ...] = ()  # SHELLWATCH_RULES: the operator's EQL rule files or directories
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    health: HealthSettings = field(default_factory=HealthSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        rule_file = env.get(ENV_PREFIX + "RULE_FILE")
        defaults = PipelineConfig()
        pipeline = PipelineConfig(
            allowed_lateness_ms=_int(env, "ALLOWED_LATENESS_MS", defaults.allowed_lateness_ms, 0),
            prefilter_enabled=_flag(env, "PREFILTER", defaults.prefilter_enabled),
            mask_secrets=_flag(env, "MASK_SECRETS", defaults.mask_secrets),
            max_hosts=_int(env, "MAX_HOSTS", defaults.max_hosts, 1),
            max_pending_per_host=_int(env, "MAX_PENDING_PER_HOST", defaults.max_pending_per_host, 1),
            max_held_per_host=_int(env, "MAX_HELD_PER_HOST", defaults.max_held_per_host, 1),
            group_period_ms=_int(env, "GROUP_PERIOD_MS", defaults.group_period_ms, 0),
            grouping_enabled=_flag(env, "GROUPING", defaults.grouping_enabled),
        )
        return cls(
            pipeline=pipeline,
            rule_file=Path(rule_file) if rule_file else None,
            shell_rule_file=_path(env, "SHELL_RULE_FILE"),
            allowlist_file=_path(env, "ALLOWLIST_FILE"),
            rules_paths=tuple(Path(p.strip()) for p in env.get(ENV_PREFIX + "RULES", "").split(",") if p.strip()),
            kafka=KafkaSettings.from_env(env),
            health=HealthSettings.from_env(env),
        )
