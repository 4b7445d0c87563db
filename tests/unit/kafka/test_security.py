"""Kafka security settings: validation naming the variable, masking, one translation per client library."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials

from shellwatch.kafka.security import KafkaSecurity, Secret, aiokafka_kwargs, faust_kwargs, librdkafka_conf
from shellwatch.settings import Settings, SettingsError
from tests.pki import CLIENT_KEY_PASSWORD, Pki, make_pki

PASSWORD = "s3cr3t-Pa55"  # a test value whose absence from every rendering is asserted
SCRAM = {
    "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "SHELLWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "SHELLWATCH_KAFKA_SASL_USERNAME": "alice",
    "SHELLWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_default_is_plaintext_without_credentials() -> None:
    security = Settings.from_env({}).kafka.security
    assert security == KafkaSecurity()
    assert aiokafka_kwargs(security) == {"security_protocol": "PLAINTEXT"}
    assert librdkafka_conf(security) == {"security.protocol": "plaintext"}
    assert faust_kwargs(security) == {}


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "scram-sha-512"])
def test_sasl_settings_reach_every_client_library(mechanism: str) -> None:
    security = Settings.from_env({**SCRAM, "SHELLWATCH_KAFKA_SASL_MECHANISM": mechanism}).kafka.security
    canonical = mechanism.upper()
    assert aiokafka_kwargs(security) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": canonical,
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
    }
    assert librdkafka_conf(security) == {
        "security.protocol": "sasl_plaintext",
        "sasl.mechanism": canonical,
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
    }
    credentials = faust_kwargs(security)["broker_credentials"]
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == ("SASL_PLAINTEXT", canonical)
    assert (credentials.username, credentials.password, credentials.ssl_context) == ("alice", PASSWORD, None)


def test_the_password_never_shows_in_reprs_or_messages() -> None:
    settings = Settings.from_env(SCRAM)
    renderings = [repr(settings), str(settings), repr(settings.kafka), f"{settings.kafka.security}"]
    renderings.append(repr(faust_kwargs(settings.kafka.security)["broker_credentials"]))
    for text in renderings:
        assert PASSWORD not in text
    assert "alice" in repr(settings.kafka.security) and "********" in repr(settings.kafka.security)
    assert settings.kafka.security.sasl_password == Secret(PASSWORD)
    # an invalid setting's message does not echo the password either
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**SCRAM, "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"})
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "SHELLWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ({**SCRAM, "SHELLWATCH_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SHELLWATCH_KAFKA_SASL_MECHANISM", "expected"),
        ({**SCRAM, "SHELLWATCH_KAFKA_SASL_MECHANISM": ""}, "SHELLWATCH_KAFKA_SASL_MECHANISM", "required"),
        ({**SCRAM, "SHELLWATCH_KAFKA_SASL_USERNAME": " "}, "SHELLWATCH_KAFKA_SASL_USERNAME", "required"),
        ({**SCRAM, "SHELLWATCH_KAFKA_SASL_PASSWORD": ""}, "SHELLWATCH_KAFKA_SASL_PASSWORD", "required"),
        ({**SCRAM, "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SSL"}, "SHELLWATCH_KAFKA_SASL_MECHANISM", "no SASL"),
        ({"SHELLWATCH_KAFKA_SSL_CAFILE": "/etc/ca.pem"}, "SHELLWATCH_KAFKA_SSL_CAFILE", "no TLS"),
        (
            {"SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "SHELLWATCH_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "SHELLWATCH_KAFKA_SSL_CAFILE",
            "cannot read '/nonexistent/ca.pem'",
        ),
        (
            {"SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "SHELLWATCH_KAFKA_SSL_KEYFILE": "/k.pem"},
            "SHELLWATCH_KAFKA_SSL_CERTFILE",
            "required with a client key file",
        ),
        ({"SHELLWATCH_MIN_INSYNC_REPLICAS": "2"}, "SHELLWATCH_MIN_INSYNC_REPLICAS", "exceeds"),
        ({"SHELLWATCH_MIN_INSYNC_REPLICAS": "0"}, "SHELLWATCH_MIN_INSYNC_REPLICAS", ">= 1"),
    ],
)
def test_unusable_security_settings_name_the_variable(env: dict[str, str], named: str, says: str) -> None:
    with pytest.raises(SettingsError, match=named) as raised:
        Settings.from_env(env)
    assert says in str(raised.value)


def test_min_insync_replicas_goes_to_every_created_topic() -> None:
    kafka = Settings.from_env({"SHELLWATCH_REPLICATION_FACTOR": "3", "SHELLWATCH_MIN_INSYNC_REPLICAS": "2"}).kafka
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)
    assert kafka.created_topic_configs == {"min.insync.replicas": "2"}
    assert Settings.from_env({}).kafka.created_topic_configs == {}  # unset: the broker's default applies


def test_tls_files_load_into_one_context_for_every_library(pki: Pki) -> None:
    env = {
        "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "SHELLWATCH_KAFKA_SASL_MECHANISM": "PLAIN",
        "SHELLWATCH_KAFKA_SASL_USERNAME": "alice",
        "SHELLWATCH_KAFKA_SASL_PASSWORD": PASSWORD,
        "SHELLWATCH_KAFKA_SSL_CAFILE": str(pki.ca_cert),
        "SHELLWATCH_KAFKA_SSL_CERTFILE": str(pki.client_cert),
        "SHELLWATCH_KAFKA_SSL_KEYFILE": str(pki.client_key),
        "SHELLWATCH_KAFKA_SSL_KEY_PASSWORD": CLIENT_KEY_PASSWORD,
    }
    security = Settings.from_env(env).kafka.security
    kwargs = aiokafka_kwargs(security)
    context = kwargs.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "shellwatch test CA"),),)]
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "PLAIN"
    assert librdkafka_conf(security) == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "alice",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(pki.ca_cert),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key),
        "ssl.key.password": CLIENT_KEY_PASSWORD,
    }
    credentials = faust_kwargs(security)["broker_credentials"]
    assert isinstance(credentials, SASLCredentials) and credentials.protocol.value == "SASL_SSL"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    only_tls = Settings.from_env({"SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SSL"}).kafka.security
    ssl_credentials = faust_kwargs(only_tls)["broker_credentials"]
    assert isinstance(ssl_credentials, SSLCredentials) and ssl_credentials.protocol.value == "SSL"
    assert librdkafka_conf(only_tls) == {"security.protocol": "ssl", "ssl.ca.location": "probe"}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SHELLWATCH_KAFKA_SSL_KEY_PASSWORD": "wrong"}, "SHELLWATCH_KAFKA_SSL_KEYFILE"),
        ({"SHELLWATCH_KAFKA_SSL_KEYFILE": "{ca}"}, "SHELLWATCH_KAFKA_SSL_KEYFILE"),
        ({"SHELLWATCH_KAFKA_SSL_CAFILE": "{key}"}, "SHELLWATCH_KAFKA_SSL_CAFILE"),
    ],
)
def test_tls_files_that_do_not_load_are_settings_errors(pki: Pki, change: dict[str, str], named: str) -> None:
    env = {
        "SHELLWATCH_KAFKA_SECURITY_PROTOCOL": "SSL",
        "SHELLWATCH_KAFKA_SSL_CAFILE": str(pki.ca_cert),
        "SHELLWATCH_KAFKA_SSL_CERTFILE": str(pki.client_cert),
        "SHELLWATCH_KAFKA_SSL_KEYFILE": str(pki.client_key),
        "SHELLWATCH_KAFKA_SSL_KEY_PASSWORD": CLIENT_KEY_PASSWORD,
    }
    env.update({k: v.format(ca=pki.ca_cert, key=pki.client_key) for k, v in change.items()})
    with pytest.raises(SettingsError, match=named) as raised:
        Settings.from_env(env)
    assert CLIENT_KEY_PASSWORD not in str(raised.value)


def test_secret_hides_itself() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r} {[secret]}"
    assert secret.reveal() == "hunter2"
    assert Path("x") != secret and Secret("hunter2") == secret
