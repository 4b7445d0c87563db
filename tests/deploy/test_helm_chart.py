"""The Helm chart, rendered by a real helm v3 and validated against the Kubernetes 1.30 and 1.34 schemas."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from shellwatch.rules.eql_rule import EqlRule, load_eql_rule, load_rules_setting
from shellwatch.rules.loader import shipped_rule_path
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from shellwatch.rules.shell_rule import load_shell_rule
from shellwatch.settings import Settings
from tests.deploy.conftest import CHART, FULL_VALUES, RELEASE, ROOT, Manifest, Render, by_kind, helm_template

RULE_FILES = ("potential_reverse_shell_via_java.toml", "shell_spawned_by_java.toml", "java_allowlist.toml")
RULES_DIR = "/etc/shellwatch/rules"
TLS_DIR = "/etc/shellwatch/kafka-tls"
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")  # the 1.30.x / 1.34.x schemas kubernetes-validate 1.37.0 carries
VALUE_SETS = {"default": (), "full": (FULL_VALUES,)}
BUILTIN_KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Service",
    "ServiceAccount",
}


def _container(deployment: Manifest) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["worker"]
    return dict(containers[0])


def _env(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or name -> valueFrom for secret references; names must be unique."""
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"duplicate env names: {names}"
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("name", RULE_FILES)
def test_chart_rule_files_are_the_shipped_ones(name: str) -> None:
    assert (CHART / "files" / name).read_bytes() == shipped_rule_path(name).read_bytes(), (
        f"deploy/helm/shellwatch/files/{name} differs from src/shellwatch/rules/{name}: copy it again"
    )


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_helm_lint_strict(helm: Path, values: tuple[Path, ...]) -> None:
    cmd = [str(helm), "lint", "--strict", str(CHART)] + [a for v in values for a in ("--values", str(v))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_builtin_kinds_pass_strict_schema_validation(
    render: Render, kubernetes_validate: Path, tmp_path: Path, values: tuple[Path, ...], version: str
) -> None:
    manifests = render(values)
    builtin = [m for m in manifests if m["kind"] != "ServiceMonitor"]  # a CRD: checked on its own below
    assert {m["kind"] for m in builtin} <= BUILTIN_KINDS
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(builtin))
    cmd = [str(kubernetes_validate), "--strict", "--kubernetes-version", version, str(rendered)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if "passed for resource" in line]
    assert len(passed) == len(builtin), done.stdout


def test_strict_validation_rejects_an_unknown_field(render: Render, kubernetes_validate: Path, tmp_path: Path) -> None:
    """The validator run above is not vacuous: a misspelt field in the pod spec fails it."""
    deployment = by_kind(render(), "Deployment")
    deployment["spec"]["template"]["spec"]["enableServiceLink"] = False
    rendered = tmp_path / "bad.yaml"
    rendered.write_text(yaml.safe_dump(deployment))
    cmd = [str(kubernetes_validate), "--strict", "--kubernetes-version", KUBERNETES_VERSIONS[-1], str(rendered)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode != 0
    assert "enableServiceLink" in done.stdout + done.stderr


def test_default_render(render: Render) -> None:
    manifests = render()
    assert sorted(m["kind"] for m in manifests) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    deployment = by_kind(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == by_kind(manifests, "ServiceAccount")["metadata"]["name"]
    assert by_kind(manifests, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = _container(deployment)
    assert container["image"] == "shellwatch:0.1.0"
    assert container["args"] == ["worker", "--loglevel", "INFO"]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert container["resources"]["limits"] == {"memory": "1Gi"}


def test_default_container_security_context(render: Render) -> None:
    sc = _container(by_kind(render(), "Deployment"))["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


def test_default_settings(render: Render) -> None:
    env = _env(_container(by_kind(render(), "Deployment")))
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["SHELLWATCH_APP_ID"] == "shellwatch"
    assert env["SHELLWATCH_NETWORK_TOPIC"] == "logs-endpoint.events.network"
    assert env["SHELLWATCH_PROCESS_TOPIC"] == "logs-endpoint.events.process"
    assert "SHELLWATCH_MIXED_TOPIC" not in env
    assert env["SHELLWATCH_REPLICATION_FACTOR"] == "3"
    assert env["SHELLWATCH_MIN_INSYNC_REPLICAS"] == "2"
    assert env["SHELLWATCH_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert not [name for name in env if name.startswith(("SHELLWATCH_KAFKA_SASL", "SHELLWATCH_KAFKA_SSL"))]
    assert env["SHELLWATCH_WEB_PORT"] == "6066"
    assert env["SHELLWATCH_DATA_DIR"] == "/var/lib/shellwatch"
    assert all(isinstance(v, str) for v in env.values()), "every setting is a string (no secret refs by default)"


@pytest.mark.parametrize("sets", [(), ("shellwatch.groupPeriodMs=86400000", "shellwatch.maxHosts=2000000")])
def test_rendered_settings_are_accepted_by_the_worker(render: Render, sets: tuple[str, ...]) -> None:
    """Helm renders large integers as floats (3600000 became "3.6e+06"), which the worker refused at start."""
    env = _env(_container(by_kind(render(sets=sets), "Deployment")))
    settings = Settings.from_env(env)
    values = yaml.safe_load((CHART / "values.yaml").read_text())["shellwatch"]
    expected = values | {k.removeprefix("shellwatch."): int(v) for k, v in (s.split("=") for s in sets)}
    assert settings.pipeline.group_period_ms == expected["groupPeriodMs"]
    assert settings.pipeline.max_hosts == expected["maxHosts"]
    assert settings.pipeline.allowed_lateness_ms == expected["allowedLatenessMs"]


def test_default_probes_service_pdb_volumes(render: Render) -> None:
    manifests = render()
    deployment = by_kind(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    # Probes on the named port, which the Service targets.
    assert container["ports"] == [{"name": "http", "containerPort": 6066, "protocol": "TCP"}]
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
    service = by_kind(manifests, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 6066, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    pdb = by_kind(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]

    # Writable emptyDirs for the read-only root filesystem.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["data"]["mountPath"] == "/var/lib/shellwatch"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert "emptyDir" in volumes["data"]
    assert "emptyDir" in volumes["tmp"]
    assert set(volumes) == {"rules", "data", "tmp"}


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_rules_config_map_is_mounted_and_named_by_the_settings(
    render: Render, tmp_path: Path, values: tuple[Path, ...]
) -> None:
    manifests = render(values)
    deployment = by_kind(manifests, "Deployment")
    configmap = by_kind(manifests, "ConfigMap")
    container = _container(deployment)
    rules_mount = next(m for m in container["volumeMounts"] if m["name"] == "rules")
    assert rules_mount == {"name": "rules", "mountPath": RULES_DIR, "readOnly": True}
    rules_volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "rules")
    assert rules_volume["configMap"]["name"] == configmap["metadata"]["name"]
    env = _env(container)
    settings = {
        "SHELLWATCH_RULE_FILE": RULE_FILES[0],
        "SHELLWATCH_SHELL_RULE_FILE": RULE_FILES[1],
        "SHELLWATCH_ALLOWLIST_FILE": RULE_FILES[2],
    }
    for variable, name in settings.items():
        assert env[variable] == f"{RULES_DIR}/{name}"
    assert sorted(configmap["data"]) == sorted(RULE_FILES)
    # What the pod would read loads with shellwatch's own loaders.
    for name, text in configmap["data"].items():
        (tmp_path / name).write_text(text)
    rule = load_reverse_shell_rule(tmp_path / RULE_FILES[0])
    shell_rule = load_shell_rule(tmp_path / RULE_FILES[1], tmp_path / RULE_FILES[2])
    assert rule.meta.id == "potential-reverse-shell-via-java"
    assert shell_rule.meta.id == "shell-spawned-by-java"
    assert len(shell_rule.allowlist) >= 1


def test_default_config_map_carries_the_shipped_files_verbatim(render: Render) -> None:
    configmap = by_kind(render(), "ConfigMap")
    for name in RULE_FILES:
        assert configmap["data"][name] == shipped_rule_path(name).read_text()


def test_full_values_replace_the_allowlist_only(render: Render) -> None:
    configmap = by_kind(render((FULL_VALUES,)), "ConfigMap")
    expected = yaml.safe_load(FULL_VALUES.read_text())["rules"]["allowlist"]
    assert configmap["data"]["java_allowlist.toml"] == expected
    assert configmap["data"]["shell_spawned_by_java.toml"] == shipped_rule_path(RULE_FILES[1]).read_text()


def test_a_rule_change_rolls_the_pods(render: Render) -> None:
    def checksum(sets: tuple[str, ...]) -> str:
        annotations = by_kind(render((), sets), "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/rules"])

    shipped = checksum(())
    assert len(shipped) == 64
    assert checksum(()) == shipped
    assert checksum(("rules.allowlist=# none\n",)) != shipped


def test_existing_config_map_replaces_the_charts(render: Render) -> None:
    manifests = render((), ("rules.existingConfigMap=site-rules",))
    assert "ConfigMap" not in {m["kind"] for m in manifests}
    deployment = by_kind(manifests, "Deployment")
    rules_volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "rules")
    assert rules_volume["configMap"]["name"] == "site-rules"
    assert "checksum/rules" not in (deployment["spec"]["template"]["metadata"].get("annotations") or {})


EXTRA_RULES = ("execution_shell_via_java_revshell_linux.toml", "execution_suspicious_java_netcon_childproc.toml")
EXTRA_DIR = "/etc/shellwatch/extra-rules"


def _extra_values(tmp_path: Path) -> Path:
    vendored = ROOT / "tests" / "rules" / "elastic"
    values = {"rules": {"extra": {name: (vendored / name).read_text() for name in EXTRA_RULES}}}
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_extra_rules_become_shellwatch_rules(render: Render, tmp_path: Path) -> None:
    """rules.extra: the files verbatim in a ConfigMap of their own, mounted read-only, named by SHELLWATCH_RULES,
    and what the pod reads there (a ConfigMap volume's layout) loads with the worker's own loader."""
    manifests = render((_extra_values(tmp_path),))
    deployment = by_kind(manifests, "Deployment")
    [extra] = [m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"].endswith("-extra-rules")]
    vendored = ROOT / "tests" / "rules" / "elastic"
    assert extra["data"] == {name: (vendored / name).read_text() for name in EXTRA_RULES}
    container = _container(deployment)
    assert _env(container)["SHELLWATCH_RULES"] == EXTRA_DIR
    mount = next(m for m in container["volumeMounts"] if m["name"] == "extra-rules")
    assert mount == {"name": "extra-rules", "mountPath": EXTRA_DIR, "readOnly": True}
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "extra-rules")
    assert volume["configMap"]["name"] == extra["metadata"]["name"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/extra-rules"]) == 64
    stamped = tmp_path / "volume" / "..2026_12_01_10_00_00.1"
    stamped.mkdir(parents=True)
    for name, text in extra["data"].items():
        (stamped / name).write_text(text)
        (tmp_path / "volume" / name).symlink_to(Path("..data") / name)
    (tmp_path / "volume" / "..data").symlink_to(stamped.name)
    loaded = load_rules_setting([tmp_path / "volume"])
    expected = [load_eql_rule(vendored / name) for name in EXTRA_RULES]
    assert sorted(r.rule_id for r in loaded) == sorted(r.rule_id for r in expected if isinstance(r, EqlRule))


def test_no_extra_rules_by_default_and_a_named_config_map_instead(render: Render) -> None:
    deployment = by_kind(render(), "Deployment")
    assert "SHELLWATCH_RULES" not in _env(_container(deployment))
    assert "checksum/extra-rules" not in deployment["spec"]["template"]["metadata"]["annotations"]
    manifests = render((), ("rules.extraConfigMap=site-eql-rules",))
    assert [m["metadata"]["name"] for m in manifests if m["kind"] == "ConfigMap"] == [f"{RELEASE}-shellwatch-rules"]
    deployment = by_kind(manifests, "Deployment")
    assert _env(_container(deployment))["SHELLWATCH_RULES"] == EXTRA_DIR
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "extra-rules")
    assert volume["configMap"]["name"] == "site-eql-rules"
    assert "checksum/extra-rules" not in deployment["spec"]["template"]["metadata"]["annotations"]


def test_full_render_secrets_tls_autoscaling(render: Render) -> None:
    values = yaml.safe_load(FULL_VALUES.read_text())
    kafka = values["kafka"]
    manifests = render((FULL_VALUES,))
    deployment = by_kind(manifests, "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = by_kind(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)

    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["image"] == f"{values['image']['repository']}@{values['image']['digest']}"
    assert container["args"] == ["worker", "--loglevel", "WARNING"]
    assert pod["serviceAccountName"] == "shellwatch-worker"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["priorityClassName"] == "security-critical"
    env = _env(container)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == kafka["bootstrapServers"]
    assert env["SHELLWATCH_APP_ID"] == "shellwatch-prod"
    assert env["SHELLWATCH_NETWORK_TOPIC"] == "edr.network"
    assert env["SHELLWATCH_ALERTS_TOPIC"] == "soc.shellwatch-alerts"
    assert env["SHELLWATCH_DEAD_LETTER_TOPIC"] == "soc.shellwatch-dead-letters"
    assert env["SHELLWATCH_ALERT_FORMAT"] == "avro"
    assert env["SHELLWATCH_SCHEMA_REGISTRY_URL"] == "http://schema-registry.kafka:8081"
    assert env["SHELLWATCH_ALLOWED_LATENESS_MS"] == "10000"
    assert env["SHELLWATCH_MAX_PENDING_PER_HOST"] == "2048"  # extraEnv
    assert env["SHELLWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["SHELLWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    sasl = kafka["sasl"]
    assert env["SHELLWATCH_KAFKA_SASL_USERNAME"] == {
        "secretKeyRef": {"name": sasl["existingSecret"], "key": sasl["usernameKey"]}
    }
    assert env["SHELLWATCH_KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": sasl["existingSecret"], "key": sasl["passwordKey"]}
    }
    tls = kafka["tls"]
    assert env["SHELLWATCH_KAFKA_SSL_CAFILE"] == f"{TLS_DIR}/{tls['caKey']}"
    assert env["SHELLWATCH_KAFKA_SSL_CERTFILE"] == f"{TLS_DIR}/{tls['certKey']}"
    assert env["SHELLWATCH_KAFKA_SSL_KEYFILE"] == f"{TLS_DIR}/{tls['keyKey']}"
    assert env["SHELLWATCH_KAFKA_SSL_KEY_PASSWORD"] == {
        "secretKeyRef": {"name": tls["existingSecret"], "key": tls["keyPasswordKey"]}
    }
    tls_mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-tls")
    assert tls_mount == {"name": "kafka-tls", "mountPath": TLS_DIR, "readOnly": True}
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "kafka-tls")
    assert tls_volume["secret"]["secretName"] == tls["existingSecret"]
    assert tls_volume["secret"]["defaultMode"] == 0o440
    assert "Secret" not in {m["kind"] for m in manifests}, "credentials stay in the user's Secrets"


def test_mixed_topic_replaces_the_two_input_topics(render: Render) -> None:
    env = _env(_container(by_kind(render((), ("kafka.topics.mixed=edr.events",)), "Deployment")))
    assert env["SHELLWATCH_MIXED_TOPIC"] == "edr.events"
    assert "SHELLWATCH_NETWORK_TOPIC" not in env
    assert "SHELLWATCH_PROCESS_TOPIC" not in env


def test_other_inputs_topics_reach_the_worker(render: Render) -> None:
    sets = ("kafka.topics.inputs.file=edr.file", "kafka.topics.inputs.library=edr.library")
    env = _env(_container(by_kind(render((), sets), "Deployment")))
    assert env["SHELLWATCH_INPUT_TOPICS"] == "file=edr.file,library=edr.library"
    assert "SHELLWATCH_INPUT_TOPICS" not in _env(_container(by_kind(render(), "Deployment")))
    mixed = _env(_container(by_kind(render((), (*sets, "kafka.topics.mixed=edr.events")), "Deployment")))
    assert "SHELLWATCH_INPUT_TOPICS" not in mixed  # one topic carries every input


def test_tls_without_sasl_mounts_only_the_ca(render: Render) -> None:
    sets = ("kafka.securityProtocol=SSL", "kafka.tls.existingSecret=kafka-ca")
    deployment = by_kind(render((), sets), "Deployment")
    env = _env(_container(deployment))
    assert env["SHELLWATCH_KAFKA_SSL_CAFILE"] == f"{TLS_DIR}/ca.crt"
    assert not [n for n in env if n.startswith("SHELLWATCH_KAFKA_SASL") or n.endswith(("CERTFILE", "KEYFILE"))]


def test_service_monitor(render: Render) -> None:
    manifests = render((FULL_VALUES,))
    monitor = by_kind(manifests, "ServiceMonitor")
    service = by_kind(manifests, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["security"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "5s")
    assert "ServiceMonitor" not in {m["kind"] for m in render()}


REJECTED = {
    "unknown top-level key": (("replicas=3",), "replicas"),
    "unknown nested key": (("kafka.bootstrap=kafka:9092",), "bootstrap"),
    "unknown probe key": (("probes.liveness.initialDelaySeconds=5",), "initialDelaySeconds"),
    "wrong type": (("replicaCount=three",), "replicaCount"),
    "wrong boolean": (("shellwatch.prefilter=maybe",), "prefilter"),
    "unknown protocol": (("kafka.securityProtocol=TLS",), "securityProtocol"),
    "unknown alert format": (("shellwatch.alertFormat=xml",), "alertFormat"),
    "zero replication factor": (("kafka.replicationFactor=0",), "replicationFactor"),
    "sasl without a secret": (("kafka.securityProtocol=SASL_SSL",), "kafka.sasl.existingSecret"),
    "extra rule file not .toml": (("rules.extra.notes=x",), "notes"),
    "input topic of a bundled input": (("kafka.topics.inputs.network=x",), "network"),
    "input topic not a topic name": (("kafka.topics.inputs.file=a b",), "file"),
    "certificate without key": (
        ("kafka.securityProtocol=SSL", "kafka.tls.existingSecret=t", "kafka.tls.certKey=tls.crt"),
        "keyKey",
    ),
}


@pytest.mark.parametrize(("sets", "named"), REJECTED.values(), ids=REJECTED.keys())
def test_bad_values_are_rejected(helm: Path, sets: tuple[str, ...], named: str) -> None:
    done = helm_template(helm, (), sets, check=False)
    assert done.returncode != 0, f"helm template accepted {sets}"
    assert named in done.stderr


def test_release_name_prefixes_every_object(render: Render) -> None:
    names = {m["kind"]: m["metadata"]["name"] for m in render()}
    assert all(name.startswith(RELEASE) for name in names.values()), names
