"""The one frozen settings object; the only reader of the environment (``SHELLWATCH_*``).

Built once in ``__main__`` and passed down. Invalid values stop the program with the variable named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shellwatch.pipeline import PipelineConfig

__all__ = ["ENV_PREFIX", "Settings", "SettingsError"]

ENV_PREFIX = "SHELLWATCH_"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


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


@dataclass(frozen=True, slots=True)
class Settings:
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    rule_file: Path | None = None
    kafka_bootstrap_servers: str | None = None

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
        )
        return cls(
            pipeline=pipeline,
            rule_file=Path(rule_file) if rule_file else None,
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        )
