"""A throw-away certificate authority for the broker's TLS listeners: CA, broker and client certificates."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shellwatch.local.kafka.listeners import BrokerTls

CLIENT_KEY_PASSWORD = "client-key-pass"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    broker: BrokerTls
    client_cert: Path
    client_key: Path  # PKCS#8, encrypted with CLIENT_KEY_PASSWORD
    other_ca_cert: Path  # a CA that signed nothing here: trusting it alone must fail


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        import ipaddress  # noqa: PLC0415

        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return path


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, broker_key, client_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca = ("shellwatch test CA", ca_key)
    broker = BrokerTls(
        ca_cert=_write_cert(directory / "ca.pem", _certificate(ca[0], ca_key, None)),
        cert_chain=_write_cert(directory / "broker.pem", _certificate("127.0.0.1", broker_key, ca, server=True)),
        key=_write_key(directory / "broker-key.pem", broker_key),
    )
    return Pki(
        ca_cert=broker.ca_cert,
        broker=broker,
        client_cert=_write_cert(directory / "client.pem", _certificate("shellwatch-worker", client_key, ca)),
        client_key=_write_key(directory / "client-key.pem", client_key, CLIENT_KEY_PASSWORD),
        other_ca_cert=_write_cert(directory / "other-ca.pem", _certificate("unrelated CA", other_key, None)),
    )
