"""Optional authenticated and encrypted listeners of the local broker (tests of the clients' security).

Beside its PLAINTEXT listener (which stays the inter-broker and readiness listener), the broker can open:

- ``SASL_PLAINTEXT``: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN for the given users (SCRAM credentials are
  written into the metadata log by ``StorageTool format --add-scram``; PLAIN users live in the JAAS line);
- with TLS material: ``SSL`` (mutual TLS: a client certificate signed by the CA is required) and
  ``SASL_SSL`` (the same mechanisms, server-authenticated TLS).

TLS material is PEM: the CA certificate, the broker's certificate chain and its unencrypted PKCS#8 key,
all written inline into ``server.properties`` (``ssl.keystore.type=PEM``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

__all__ = [
    "SCRAM_MECHANISMS",
    "BrokerTls",
    "SecureListener",
    "SecureListeners",
    "scram_format_args",
    "secure_properties",
]

SecureListener = Literal["SASL_PLAINTEXT", "SSL", "SASL_SSL"]
SCRAM_MECHANISMS: Final = ("SCRAM-SHA-512", "SCRAM-SHA-256")
_SCRAM_LOGIN: Final = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
_PLAIN_LOGIN: Final = "org.apache.kafka.common.security.plain.PlainLoginModule required"


@dataclass(frozen=True, slots=True)
class BrokerTls:
    ca_cert: Path  # PEM: the CA that signed the broker's and the clients' certificates
    cert_chain: Path  # PEM: the broker's certificate (SAN 127.0.0.1), then its chain
    key: Path  # PEM: the broker's unencrypted PKCS#8 private key


@dataclass(frozen=True, slots=True)
class SecureListeners:
    users: Mapping[str, str] = field(default_factory=lambda: {"alice": "secret"})  # name -> password
    tls: BrokerTls | None = None

    def __post_init__(self) -> None:
        for name, password in self.users.items():
            unsafe = set('"\\,=[]\n') & set(name + password)
            if not name or not password or unsafe:
                raise ValueError(f"SASL user {name!r}: name and password must be non-empty, without {sorted(unsafe)}")

    @property
    def names(self) -> tuple[SecureListener, ...]:
        return ("SASL_PLAINTEXT", "SSL", "SASL_SSL") if self.tls is not None else ("SASL_PLAINTEXT",)


def scram_format_args(secure: SecureListeners) -> list[str]:
    """``StorageTool format`` arguments that create the SCRAM credentials of every user."""
    return [
        arg
        for mechanism in SCRAM_MECHANISMS
        for name, password in secure.users.items()
        for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
    ]


def _pem(path: Path) -> str:
    return path.read_text().strip().replace("\n", "\\n")  # one properties line; Java reads \n as newline


def secure_properties(secure: SecureListeners, ports: Mapping[SecureListener, int]) -> dict[str, str]:
    """Broker properties for the secure listeners; ``listeners`` etc. are to be appended to the PLAINTEXT ones."""
    endpoints = ",".join(f"{name}://127.0.0.1:{ports[name]}" for name in secure.names)
    props = {
        "listeners": endpoints,
        "advertised.listeners": endpoints,
        "listener.security.protocol.map": ",".join(f"{name}:{name}" for name in secure.names),
        "sasl.enabled.mechanisms": ",".join((*SCRAM_MECHANISMS, "PLAIN")),
    }
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in secure.users.items())
    for name in secure.names:
        if not name.startswith("SASL_"):
            continue
        prefix = f"listener.name.{name.lower()}"
        for mechanism in SCRAM_MECHANISMS:
            props[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = _SCRAM_LOGIN
        props[f"{prefix}.plain.sasl.jaas.config"] = f"{_PLAIN_LOGIN} {plain_users};"
    if secure.tls is not None:
        props.update(
            {
                "ssl.keystore.type": "PEM",
                "ssl.keystore.certificate.chain": _pem(secure.tls.cert_chain),
                "ssl.keystore.key": _pem(secure.tls.key),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.certificates": _pem(secure.tls.ca_cert),
                "listener.name.ssl.ssl.client.auth": "required",
            }
        )
    return props
