"""Fixtures for the deployment tests: the real tools (helm, hadolint, docker-compose, kubernetes-validate).

A missing tool makes these tests fail, never skip (helm is fetched on first use like the Kafka jars).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import fetch_helm, venv_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "shellwatch"
FULL_VALUES = Path(__file__).with_name("full-values.yaml")
RELEASE = "sw"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def helm() -> Path:
    return fetch_helm()


@pytest.fixture(scope="session")
def kubernetes_validate() -> Path:
    return venv_tool("kubernetes-validate")


def helm_template(
    helm: Path, values: Sequence[Path] = (), sets: Sequence[str] = (), *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [str(helm), "template", RELEASE, str(CHART), "--namespace", "security"]
    for path in values:
        cmd += ["--values", str(path)]
    for item in sets:
        cmd += ["--set", item]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if check and done.returncode != 0:
        pytest.fail(f"helm template failed ({done.returncode}):\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """``render(values=..., sets=...)``: the chart's manifests as dicts (helm template, no cluster)."""

    def _render(values: Sequence[Path] = (), sets: Sequence[str] = ()) -> list[Manifest]:
        out = helm_template(helm, values, sets).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    return _render


def by_kind(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {[m['metadata']['name'] for m in found]}"
    return found[0]
