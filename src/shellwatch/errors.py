"""Every exception shellwatch raises, in one place. Each is a :class:`ShellwatchError` and keeps the built-in base
callers caught before (``ValueError`` for bad input or configuration, ``RuntimeError`` for a service that
refuses), so ``except ValueError`` and ``except ShellwatchError`` both work. Records that cannot be decoded
are not exceptions: they are data (``formats.event_codec.DecodeError``) and become dead letters.

    ShellwatchError
    ├── bad input or configuration (also ValueError)
    │   ├── InvalidTimestampError      ecs.timestamps: an @timestamp that is no date
    │   ├── EqlError                   eql.parse: a query outside the supported EQL subset, with line and column
    │   ├── RuleError                  rules.loader: a rule or list file, naming file and field
    │   │   └── RuleFileError          rules.eql_rule: one EQL rule file (becomes a RuleProblem)
    │   ├── NotHostLocalError          core.host_rules: a sequence rule whose join may span hosts
    │   ├── AvroDecodeError            formats.avro: Avro bytes that do not decode
    │   ├── CaptureError               formats.capture: a capture line that is not one
    │   ├── SnapshotError              core.snapshot: sequence state that cannot be restored
    │   ├── SecurityConfigError        kafka.security: SASL/TLS settings that do not fit together
    │   ├── SettingsError              settings: an environment variable, named
    │   └── ExpectationError           tools.expectations: an expectations file
    ├── a service that refuses (also RuntimeError)
    │   ├── PartitionMismatchError     kafka.admin: topics missing or not co-partitioned
    │   ├── KafkaAccessError           kafka.admin: the cluster denies what the worker needs
    │   ├── RecordingError             tools.record: recording cannot start
    │   ├── ReplayError                tools.replay.produce: replaying cannot start
    │   ├── AlertTopicMissingError     tools.replay.expect: no alerts topic to watch
    │   ├── BrokerStartError           local.kafka: the local broker did not start
    │   ├── KafkaFetchError            local.kafka: the Kafka jars could not be fetched
    │   └── RegistryError              local.registry
    │       ├── RegistryBuildError     building the local schema registry failed
    │       └── RegistryStartError     starting it failed
    └── UnusableRecordError            worker.runtime: a relevant record the agent cannot use (dead-lettered)
"""

from __future__ import annotations

__all__ = [
    "AlertTopicMissingError",
    "AvroDecodeError",
    "BrokerStartError",
    "CaptureError",
    "EqlError",
    "ExpectationError",
    "InvalidTimestampError",
    "KafkaAccessError",
    "KafkaFetchError",
    "NotHostLocalError",
    "PartitionMismatchError",
    "RecordingError",
    "RegistryBuildError",
    "RegistryError",
    "RegistryStartError",
    "ReplayError",
    "RuleError",
    "RuleFileError",
    "SecurityConfigError",
    "SettingsError",
    "ShellwatchError",
    "SnapshotError",
    "UnusableRecordError",
]


class ShellwatchError(Exception):
    """The root of every exception shellwatch raises."""


class InvalidTimestampError(ShellwatchError, ValueError):
    """A present ``@timestamp`` value that is neither ISO-8601 nor epoch milliseconds."""


class EqlError(ShellwatchError, ValueError):
    """An EQL query that cannot be compiled: a syntax error or a construct outside the supported subset.

    ``construct`` names what was refused (``regex``, ``sample``, ``function concat``, ``syntax`` ...);
    ``line`` and ``column`` (1-based) point into the query text.
    """

    def __init__(self, construct: str, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {construct}: {message}")
        self.construct = construct
        self.message = message
        self.line = line
        self.column = column


class RuleError(ShellwatchError, ValueError):
    """A rule file that cannot be loaded; ``problems`` holds ``file: field: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class RuleFileError(RuleError):
    """One EQL rule file that cannot be loaded; ``construct``, ``line`` and ``column`` when a query construct is."""

    def __init__(
        self, file: str, message: str, construct: str | None = None, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__([f"{file}: {message}"])
        self.file, self.message, self.construct, self.line, self.column = file, message, construct, line, column


class NotHostLocalError(ShellwatchError, ValueError):
    """Sequence rules whose join does not keep each sequence on one host: the worker partitions by ``host.id``."""


class AvroDecodeError(ShellwatchError, ValueError):
    """An Avro record that cannot be read; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CaptureError(ShellwatchError, ValueError):
    """A line that starts like a capture record but is not a valid one."""


class SnapshotError(ShellwatchError, ValueError):
    """Bytes that are not a host snapshot of a supported version."""


class SecurityConfigError(ShellwatchError, ValueError):
    """A security setting that cannot work; ``field`` names the :class:`KafkaSecurity` field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PartitionMismatchError(ShellwatchError, RuntimeError):
    """A source, relevant or dead-letter topic is missing, or the partition counts differ."""


class KafkaAccessError(ShellwatchError, RuntimeError):
    """The cluster could not be reached or refused us (authentication, authorization, TLS)."""


class SettingsError(ShellwatchError, ValueError):
    """A setting that cannot be used; the message names the variable."""


class UnusableRecordError(ShellwatchError):
    """A record the agent cannot use; it goes to the dead-letter topic with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class ExpectationError(ShellwatchError, ValueError):
    """An expectation line that cannot be used; the message names the line."""


class RecordingError(ShellwatchError, RuntimeError):
    """Recording cannot start (a topic that does not exist)."""


class ReplayError(ShellwatchError, RuntimeError):
    """The replay could not be carried out (a missing topic, undelivered records)."""


class AlertTopicMissingError(ShellwatchError, RuntimeError):
    """The alerts topic is not there: no worker has run with these settings."""


class BrokerStartError(ShellwatchError, RuntimeError):
    """The local broker could not be formatted, launched or did not become ready."""


class KafkaFetchError(ShellwatchError, RuntimeError):
    """Fetching the Kafka jars with Maven failed."""


class RegistryError(ShellwatchError, RuntimeError):
    """Base class for local schema registry failures (also raised for unexpected HTTP answers)."""


class RegistryBuildError(RegistryError):
    """Building the registry runner jar with Maven failed."""


class RegistryStartError(RegistryError):
    """The registry JVM could not be launched or did not become ready."""
