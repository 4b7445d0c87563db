"""tests/deploy/pod_run.py: the rendered chart's container spec as ``docker run`` arguments (no engine needed).

The run itself (the probes, the stop within the grace period) happens in ``.ci/containers.sh``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import FULL_VALUES, Render
from tests.deploy.pod_run import PlanError, check_non_root, cpu_shares, plan, quantity_bytes

RULES = Path("/work/rules")


def _pairs(args: tuple[str, ...], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def test_default_render_becomes_a_hardened_docker_run(render: Render) -> None:
    p = plan(render(), rules_dir=RULES, name="pod", network="net", publish_port=6068)
    args = p.run_args
    assert args[-4:] == ("shellwatch:0.1.0", "worker", "--loglevel", "INFO"), "image, then the container's args"
    assert p.image == "shellwatch:0.1.0"
    assert _pairs(args, "--user") == ["10001:10001"]
    assert _pairs(args, "--group-add") == ["10001"], "fsGroup"
    assert "--read-only" in args
    assert _pairs(args, "--cap-drop") == ["ALL"]
    assert _pairs(args, "--security-opt") == ["no-new-privileges:true"]
    assert _pairs(args, "--memory") == [str(1024**3)]
    assert _pairs(args, "--cpu-shares") == ["256"], "250m, as the kubelet maps a CPU request"
    assert _pairs(args, "--stop-timeout") == ["60"] and p.grace_s == 60
    assert _pairs(args, "--publish") == ["127.0.0.1:6068:6066"]
    assert _pairs(args, "--network") == ["net"]
    assert _pairs(args, "--volume") == [f"{RULES}/rules:/etc/shellwatch/rules:ro"]
    tmpfs = dict(t.split(":", 1) for t in _pairs(args, "--tmpfs"))
    assert tmpfs == {
        "/var/lib/shellwatch": f"rw,exec,uid=10001,gid=10001,size={256 * 1024**2}",
        "/tmp": f"rw,exec,uid=10001,gid=10001,size={64 * 1024**2}",
    }
    env = dict(e.split("=", 1) for e in _pairs(args, "--env"))
    assert env["SHELLWATCH_GROUP_PERIOD_MS"] == "3600000"
    assert env["SHELLWATCH_RULE_FILE"] == "/etc/shellwatch/rules/potential_reverse_shell_via_java.toml"
    assert set(p.config_files) == {
        "rules/potential_reverse_shell_via_java.toml",
        "rules/shell_spawned_by_java.toml",
        "rules/java_allowlist.toml",
    }
    assert "SHELLWATCH_RULES" not in env, "no extra rules unless the values give some"
    assert [(pr.kind, pr.path, pr.port) for pr in p.probes] == [
        ("startup", "/healthz", 6066),
        ("liveness", "/healthz", 6066),
        ("readiness", "/readyz", 6066),
    ]
    assert p.run_as_non_root and p.run_as_user == 10001


def test_secret_refs_need_their_values(render: Render) -> None:
    manifests = render(values=[FULL_VALUES])
    with pytest.raises(PlanError, match=r"secret .* not given"):
        plan(manifests, rules_dir=RULES, name="pod")


def test_an_unplayable_spec_is_refused(render: Render) -> None:
    manifests = render()
    [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    with pytest.raises(PlanError, match="privileged"):
        plan(manifests, rules_dir=RULES, name="pod")


@pytest.mark.parametrize(
    ("quantity", "expected"), [("256Mi", 256 * 1024**2), ("1Gi", 1024**3), ("500M", 500 * 10**6), ("1024", 1024)]
)
def test_quantity_bytes(quantity: str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


@pytest.mark.parametrize(("quantity", "expected"), [("250m", 256), ("1", 1024), ("0.5", 512), ("1m", 2)])
def test_cpu_shares(quantity: str, expected: int) -> None:
    assert cpu_shares(quantity) == expected


def test_run_as_non_root_is_checked_like_the_kubelet() -> None:
    check_non_root("10001:10001", None)
    check_non_root("shellwatch", 10001)
    with pytest.raises(PlanError, match="not numeric"):
        check_non_root("shellwatch", None)
    with pytest.raises(PlanError, match="root"):
        check_non_root("0", None)
