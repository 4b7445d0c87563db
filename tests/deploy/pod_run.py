"""The rendered chart's worker container, run on a plain container engine as far as one allows.

``plan(manifests, ...)`` reads the Deployment (and the ConfigMaps) that ``helm template`` rendered and turns the
pod's one container into ``docker run`` arguments: image and args; every ``env`` entry (values, and
``secretKeyRef`` from secrets given on the command line); each ``configMap`` volume written to a directory of
its own (``--rules-dir``/<volume name>) and bind-mounted read-only, each ``emptyDir`` as a tmpfs of its
``sizeLimit``; the security context (user and group, ``fsGroup`` as a supplementary group, read-only root, no
privilege escalation, capabilities dropped; ``runAsNonRoot`` checked against the image's numeric user as the
kubelet does); memory limit and CPU request (as CPU shares, the kubelet's mapping); the grace period as the
stop timeout. The probes are not given to the engine (it has one health check); :func:`probe` plays them from
the host as the kubelet would.

``python -m tests.deploy.pod_run RENDERED.yaml --network NET --publish PORT --rules-dir DIR --name NAME``
(what ``.ci/containers.sh`` runs) starts the container, waits for the startup probe within its
``periodSeconds x failureThreshold`` budget, then for readiness, checks liveness, stops the container with
the grace period and requires exit status 0 within it. It prints each step and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

_BINARY_SUFFIXES = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_DECIMAL_SUFFIXES = {"k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


class PlanError(ValueError):
    """The container spec holds something a plain engine cannot run as the kubelet would."""


@dataclass(frozen=True, slots=True)
class Probe:
    kind: str  # startup | liveness | readiness
    path: str
    port: int
    period_s: int
    timeout_s: int
    failure_threshold: int


@dataclass(frozen=True, slots=True)
class Plan:
    """``docker run`` arguments (without the leading ``docker run``) and what is checked beside them."""

    run_args: tuple[str, ...]
    image: str
    container_port: int
    probes: tuple[Probe, ...]
    grace_s: int
    run_as_non_root: bool
    run_as_user: int | None
    config_files: Mapping[str, str]  # <volume name>/<file name> -> content of a ConfigMap, written under rules_dir


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``256Mi``, ``1Gi``, ``500M``, ``1024``) in bytes."""
    for suffixes in (_BINARY_SUFFIXES, _DECIMAL_SUFFIXES):
        for suffix, factor in suffixes.items():
            if quantity.endswith(suffix):
                return int(float(quantity.removesuffix(suffix)) * factor)
    return int(quantity)


def cpu_shares(quantity: str) -> int:
    """The kubelet's cgroup v1 CPU shares for a CPU request: millicores x 1024 / 1000, at least 2."""
    millis = int(quantity.removesuffix("m")) if quantity.endswith("m") else int(float(quantity) * 1000)
    return max(2, millis * 1024 // 1000)


def _one(manifests: Sequence[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m.get("kind") == kind]
    if len(found) != 1:
        raise PlanError(f"expected one {kind}, found {len(found)}")
    return found[0]


def _env_args(env: Sequence[Mapping[str, Any]], secrets: Mapping[tuple[str, str], str]) -> list[str]:
    args: list[str] = []
    for entry in env:
        name = entry["name"]
        if "value" in entry:
            args += ["--env", f"{name}={entry['value']}"]
            continue
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            raise PlanError(f"env {name}: only value and valueFrom.secretKeyRef are supported, got {entry}")
        key = (ref["name"], ref["key"])
        if key not in secrets:
            raise PlanError(f"env {name}: secret {key[0]}/{key[1]} not given (--secret NAME/KEY=VALUE)")
        args += ["--env", f"{name}={secrets[key]}"]
    return args


def _probes(container: Mapping[str, Any], ports: Mapping[str, int]) -> tuple[Probe, ...]:
    probes = []
    for kind in ("startup", "liveness", "readiness"):
        spec = container.get(f"{kind}Probe")
        if spec is None:
            continue
        get = spec.get("httpGet")
        if get is None:
            raise PlanError(f"{kind}Probe: only httpGet probes are played, got {sorted(spec)}")
        port = get["port"]
        resolved = ports[port] if isinstance(port, str) else int(port)
        probes.append(
            Probe(
                kind=kind,
                path=get["path"],
                port=resolved,
                period_s=int(spec.get("periodSeconds", 10)),
                timeout_s=int(spec.get("timeoutSeconds", 1)),
                failure_threshold=int(spec.get("failureThreshold", 3)),
            )
        )
    return tuple(probes)


def _volume_args(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    config_maps: Mapping[str, Manifest],
    rules_dir: Path,
    owner: tuple[int, int] | None,
) -> tuple[list[str], dict[str, str]]:
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    args: list[str] = []
    files: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        path = mount["mountPath"]
        if "configMap" in volume:
            config_map = config_maps.get(volume["configMap"]["name"])
            if config_map is None:
                raise PlanError(f"volume {mount['name']}: ConfigMap {volume['configMap']['name']} not rendered")
            name = str(mount["name"])
            files.update({f"{name}/{k}": str(v) for k, v in config_map.get("data", {}).items()})
            mode = "ro" if mount.get("readOnly") else "rw"
            args += ["--volume", f"{rules_dir / name}:{path}:{mode}"]
        elif "emptyDir" in volume:
            # emptyDir: a fresh directory (exec allowed) of at most sizeLimit, writable by the pod's user. The
            # kubelet makes it mode 0777 (group fsGroup); this engine gives a tmpfs over an image directory that
            # directory's mode with root as owner, whatever mode= says: the user and fsGroup own it instead.
            size = volume["emptyDir"].get("sizeLimit")
            options = ["rw", "exec"] + ([f"uid={owner[0]}", f"gid={owner[1]}"] if owner else [])
            options += [f"size={quantity_bytes(size)}"] if size else []
            args += ["--tmpfs", f"{path}:{','.join(options)}"]
        else:
            raise PlanError(f"volume {mount['name']}: only configMap and emptyDir are supported, got {volume}")
    return args, files


def _security_args(pod_ctx: Mapping[str, Any], ctx: Mapping[str, Any]) -> tuple[list[str], bool, int | None]:
    merged = {**pod_ctx, **ctx}  # the container's settings override the pod's
    args: list[str] = []
    user, group = merged.get("runAsUser"), merged.get("runAsGroup")
    if user is not None:
        args += ["--user", f"{user}:{group}" if group is not None else str(user)]
    if "fsGroup" in pod_ctx:
        args += ["--group-add", str(pod_ctx["fsGroup"])]
    if merged.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if merged.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges:true"]
    if merged.get("privileged"):
        raise PlanError("privileged containers are not run")
    capabilities = merged.get("capabilities", {})
    args += [arg for cap in capabilities.get("drop", []) for arg in ("--cap-drop", cap)]
    args += [arg for cap in capabilities.get("add", []) for arg in ("--cap-add", cap)]
    seccomp = merged.get("seccompProfile", {}).get("type")
    if seccomp not in (None, "RuntimeDefault"):
        raise PlanError(f"seccompProfile {seccomp}: only RuntimeDefault (the engine's default profile) is run")
    return args, bool(merged.get("runAsNonRoot")), user


def plan(
    manifests: Sequence[Manifest],
    *,
    rules_dir: Path,
    name: str,
    network: str | None = None,
    publish_port: int | None = None,
    secrets: Mapping[tuple[str, str], str] | None = None,
) -> Plan:
    """The ``docker run`` arguments for the rendered Deployment's single container."""
    deployment = _one(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    containers = pod["containers"]
    if len(containers) != 1 or pod.get("initContainers"):
        raise PlanError("expected exactly one container and no init containers")
    [container] = containers
    if "command" in container:
        raise PlanError("command overrides the image's entrypoint: not expected from this chart")
    ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports", []) if "name" in p}
    if len(ports) != 1:
        raise PlanError(f"expected one named container port, got {ports}")
    [container_port] = ports.values()
    config_maps = {m["metadata"]["name"]: m for m in manifests if m.get("kind") == "ConfigMap"}

    args: list[str] = ["--name", name, "--hostname", name, "--detach"]
    if network:
        args += ["--network", network]
    if publish_port is not None:
        args += ["--publish", f"127.0.0.1:{publish_port}:{container_port}"]
    args += _env_args(container.get("env", []), secrets or {})
    pod_ctx = pod.get("securityContext", {})
    security, non_root, user = _security_args(pod_ctx, container.get("securityContext", {}))
    group = pod_ctx.get("fsGroup", container.get("securityContext", {}).get("runAsGroup", pod_ctx.get("runAsGroup")))
    owner = (int(user), int(group if group is not None else user)) if user is not None else None
    volume_args, files = _volume_args(pod, container, config_maps, rules_dir, owner)
    args += volume_args
    args += security
    resources = container.get("resources", {})
    if "memory" in resources.get("limits", {}):
        args += ["--memory", str(quantity_bytes(resources["limits"]["memory"]))]
    if "cpu" in resources.get("limits", {}):
        args += ["--cpus", str(int(cpu_shares(resources["limits"]["cpu"]) * 1000 / 1024) / 1000)]
    if "cpu" in resources.get("requests", {}):
        args += ["--cpu-shares", str(cpu_shares(resources["requests"]["cpu"]))]
    grace_s = int(pod.get("terminationGracePeriodSeconds", 30))
    args += ["--stop-timeout", str(grace_s), container["image"], *container.get("args", [])]
    return Plan(
        run_args=tuple(args),
        image=container["image"],
        container_port=container_port,
        probes=_probes(container, ports),
        grace_s=grace_s,
        run_as_non_root=non_root,
        run_as_user=user,
        config_files=files,
    )


def check_non_root(image_user: str, plan_user: int | None) -> None:
    """The kubelet's runAsNonRoot check: the effective user must be numeric and not 0."""
    user = str(plan_user) if plan_user is not None else image_user.split(":", maxsplit=1)[0]
    if not user.isdigit():
        raise PlanError(f"runAsNonRoot: user {user!r} is not numeric, the kubelet refuses to start it")
    if int(user) == 0:
        raise PlanError("runAsNonRoot: the container would run as root")


def _get(url: str, timeout_s: int) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def probe(p: Probe, host_port: int, *, until_success: bool) -> float:
    """Plays a probe as the kubelet does (success: 200-399); returns seconds until it held, raises if it never did.

    ``until_success``: a startup/readiness probe, tried every period up to its failure threshold. Otherwise
    (liveness) it must hold now.
    """
    started = time.monotonic()
    attempts = p.failure_threshold if until_success else 1
    last = 0
    for attempt in range(attempts):
        last = _get(f"http://127.0.0.1:{host_port}{p.path}", p.timeout_s)
        if 200 <= last < 400:
            return time.monotonic() - started
        if attempt + 1 < attempts:
            time.sleep(p.period_s)
    raise PlanError(f"{p.kind} probe {p.path} failed {attempts} time(s), last status {last or 'no answer'}")


def _docker(docker: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([docker, *args], capture_output=True, text=True, check=False, timeout=180)
    if check and done.returncode != 0:
        raise PlanError(f"docker {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def run(p: Plan, *, docker: str, rules_dir: Path, host_port: int, name: str) -> None:
    image_user = json.loads(_docker(docker, "image", "inspect", "--format", "{{json .Config.User}}", p.image).stdout)
    if p.run_as_non_root:
        check_non_root(image_user, p.run_as_user)
        print(f"pod-run: runAsNonRoot holds (image user {image_user!r}, runAsUser {p.run_as_user})")
    for file_name, content in p.config_files.items():
        (rules_dir / file_name).parent.mkdir(parents=True, exist_ok=True)
        (rules_dir / file_name).write_text(content)
    print("pod-run: docker run " + shlex.join(p.run_args))
    _docker(docker, "run", *p.run_args)
    try:
        by_kind = {pr.kind: pr for pr in p.probes}
        if "startup" in by_kind:
            print(f"pod-run: startup probe held after {probe(by_kind['startup'], host_port, until_success=True):.1f}s")
        if "readiness" in by_kind:
            # Readiness keeps being probed while the pod runs; here: until it first holds, within the startup budget.
            ready = by_kind["readiness"]
            budget = by_kind.get("startup", ready)
            waited = probe(
                Probe(ready.kind, ready.path, ready.port, ready.period_s, ready.timeout_s, budget.failure_threshold),
                host_port,
                until_success=True,
            )
            print(f"pod-run: readiness probe held after {waited:.1f}s more")
        if "liveness" in by_kind:
            probe(by_kind["liveness"], host_port, until_success=False)
            print("pod-run: liveness probe holds")
        started = time.monotonic()
        _docker(docker, "stop", "--time", str(p.grace_s), name)
        took = time.monotonic() - started
        status = int(_docker(docker, "inspect", "--format", "{{.State.ExitCode}}", name).stdout)
        print(f"pod-run: stopped in {took:.1f}s (grace {p.grace_s}s), exit status {status}")
        if status != 0 or took >= p.grace_s:
            raise PlanError(f"SIGTERM: exit status {status} after {took:.1f}s (grace {p.grace_s}s)")
    except PlanError:
        print(_docker(docker, "logs", "--tail", "60", name, check=False).stderr, file=sys.stderr)
        raise
    finally:
        _docker(docker, "rm", "--force", "--volumes", name, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.pod_run", description=__doc__.splitlines()[0])
    parser.add_argument("rendered", type=Path, help="helm template output")
    parser.add_argument("--docker", default="docker")
    parser.add_argument("--network")
    parser.add_argument("--publish", type=int, required=True, help="host port for the container's web port")
    parser.add_argument("--rules-dir", type=Path, required=True, help="where the ConfigMap's files are written")
    parser.add_argument("--name", default="shellwatch-pod")
    parser.add_argument("--secret", action="append", default=[], help="NAME/KEY=VALUE for a secretKeyRef")
    parser.add_argument("--print", action="store_true", help="only print the docker run arguments")
    ns = parser.parse_args(argv)
    secrets: dict[tuple[str, str], str] = {}
    for item in ns.secret:
        ref, _, value = item.partition("=")
        secret, _, key = ref.partition("/")
        secrets[(secret, key)] = value
    manifests = [m for m in yaml.safe_load_all(ns.rendered.read_text()) if m]
    try:
        p = plan(
            manifests,
            rules_dir=ns.rules_dir.absolute(),
            name=ns.name,
            network=ns.network,
            publish_port=ns.publish,
            secrets=secrets,
        )
        if ns.print:
            print(shlex.join(p.run_args))
            return 0
        run(p, docker=ns.docker, rules_dir=ns.rules_dir.absolute(), host_port=ns.publish, name=ns.name)
    except PlanError as exc:
        print(f"pod-run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
