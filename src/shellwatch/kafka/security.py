"""How every Kafka client of the project authenticates: one settings object, one translation per library.

:class:`KafkaSecurity` holds the protocol (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``), the SASL
mechanism and credentials (``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``) and the TLS files. Each client
library gets its keyword arguments from exactly one function here, so no client does it differently:

- :func:`aiokafka_kwargs` -- the pre-filter stage's consumer, producer and admin client;
- :func:`faust_kwargs` -- the Faust app (``broker_credentials`` / ``ssl_context``, which Faust hands to the
  aiokafka clients it creates: consumer, producer, topic creation);
- :func:`librdkafka_conf` -- confluent-kafka's AdminClient, Producer and Consumer (provisioning, demo, tests).

Secrets are :class:`Secret` values: their ``repr``/``str`` is a mask, so logging a settings object, a config
or an exception that quotes one never prints the password.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from shellwatch.errors import SecurityConfigError

__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "KafkaSecurity",
    "SaslMechanism",
    "Secret",
    "SecurityConfigError",
    "SecurityProtocol",
    "aiokafka_kwargs",
    "faust_kwargs",
    "librdkafka_conf",
    "ssl_context",
    "validate",
]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS: Final[tuple[SecurityProtocol, ...]] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final[tuple[SaslMechanism, ...]] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MASK: Final = "********"


class Secret:
    """A string that never shows itself in ``repr``/``str``/f-strings; :meth:`reveal` hands it to a client."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """Authentication and encryption towards the brokers (the default: plaintext, no authentication)."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_cafile: Path | None = None  # PEM CA bundle; None: the system's trust store
    ssl_certfile: Path | None = None  # PEM client certificate (mutual TLS), may also hold the key
    ssl_keyfile: Path | None = None  # PEM private key of the client certificate
    ssl_key_password: Secret | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


def _readable(field: str, path: Path | None) -> None:
    if path is None:
        return
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SecurityConfigError(field, f"cannot read {str(path)!r}: {exc.strerror or exc}") from None


def validate(security: KafkaSecurity) -> None:
    """Raise :class:`SecurityConfigError` for the first setting that cannot work (files are read once here)."""
    if security.uses_sasl:
        for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
            if getattr(security, name) is None:
                raise SecurityConfigError(name, f"required with security protocol {security.protocol}")
    else:
        for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
            if getattr(security, name) is not None:
                raise SecurityConfigError(name, f"set, but security protocol {security.protocol} uses no SASL")
    tls_files = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password")
    if not security.uses_ssl:
        for name in tls_files:
            if getattr(security, name) is not None:
                raise SecurityConfigError(name, f"set, but security protocol {security.protocol} uses no TLS")
        return
    if security.ssl_keyfile is not None and security.ssl_certfile is None:
        raise SecurityConfigError("ssl_certfile", "required with a client key file")
    if security.ssl_key_password is not None and security.ssl_certfile is None:
        raise SecurityConfigError("ssl_certfile", "required with a key password")
    for name in tls_files[:3]:
        _readable(name, getattr(security, name))
    ssl_context(security)  # a CA, certificate or key that does not load is a settings error too


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """The client TLS context (server verified against the CA, hostname checked), or None without TLS."""
    if not security.uses_ssl:
        return None
    cafile = security.ssl_cafile
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile else None)
    except (ssl.SSLError, OSError) as exc:
        raise SecurityConfigError("ssl_cafile", f"no CA certificate loads from {str(cafile)!r}: {exc}") from None
    if security.ssl_certfile is not None:
        password = security.ssl_key_password.reveal() if security.ssl_key_password else None
        try:
            context.load_cert_chain(
                str(security.ssl_certfile),
                str(security.ssl_keyfile) if security.ssl_keyfile else None,
                password=password,
            )
        except (ssl.SSLError, OSError) as exc:
            field = "ssl_keyfile" if security.ssl_keyfile is not None else "ssl_certfile"
            raise SecurityConfigError(
                field, f"the client certificate and key do not load (wrong file or key password?): {exc}"
            ) from None
    return context


def _sasl_parts(security: KafkaSecurity) -> tuple[str, str, str]:
    mechanism, username, password = security.sasl_mechanism, security.sasl_username, security.sasl_password
    if mechanism is None or username is None or password is None:
        raise SecurityConfigError(
            "sasl_mechanism", f"mechanism, username and password required for {security.protocol}"
        )
    return mechanism, username, password.reveal()


def aiokafka_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaConsumer``/``AIOKafkaProducer``/``AIOKafkaAdminClient``."""
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    context = ssl_context(security)
    if context is not None:
        kwargs["ssl_context"] = context
    if security.uses_sasl:
        mechanism, username, password = _sasl_parts(security)
        kwargs.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    return kwargs


def faust_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """``faust.App`` settings: ``broker_credentials`` (SASL, with its TLS context) or a bare ``ssl_context``.

    Faust turns them into the same aiokafka arguments as :func:`aiokafka_kwargs` (see
    ``faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth``) for every client it makes.
    """
    from faust.auth import SASLCredentials, SSLCredentials  # noqa: PLC0415 - Faust only where the app is built

    context = ssl_context(security)
    if security.uses_sasl:
        mechanism, username, password = _sasl_parts(security)
        return {
            "broker_credentials": SASLCredentials(
                username=username, password=password, mechanism=mechanism, ssl_context=context
            )
        }
    if context is not None:
        return {"broker_credentials": SSLCredentials(context)}
    return {}


def librdkafka_conf(security: KafkaSecurity) -> dict[str, str]:
    """confluent-kafka (librdkafka) configuration entries; merge them into any client's config."""
    conf = {"security.protocol": security.protocol.lower()}
    if security.uses_sasl:
        mechanism, username, password = _sasl_parts(security)
        conf.update({"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": password})
    if security.uses_ssl:
        conf["ssl.ca.location"] = str(security.ssl_cafile) if security.ssl_cafile else "probe"  # probe: system CAs
        if security.ssl_certfile is not None:
            conf["ssl.certificate.location"] = str(security.ssl_certfile)
            conf["ssl.key.location"] = str(security.ssl_keyfile or security.ssl_certfile)
        if security.ssl_key_password is not None:
            conf["ssl.key.password"] = security.ssl_key_password.reveal()
    return conf
