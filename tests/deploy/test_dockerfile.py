"""The Dockerfile: hadolint-clean, multi-stage, non-root, and consistent with the chart and the settings."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from shellwatch.settings import KafkaSettings
from tests.deploy.conftest import CHART, ROOT
from tests.deploy.tools import venv_tool

DOCKERFILE = ROOT / "Dockerfile"
COMPILERS = ("gcc", "g++", "cc ", "build-essential", "clang", "make ", "apt-get", "apk ")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages(text: str) -> list[Stage]:
    """The stages, with each FROM's ``${ARG}`` replaced by the default of an ARG declared before the first FROM."""
    logical = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    global_args: dict[str, str] = {}
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], default)
        elif keyword == "FROM":
            parts = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], args).split()
            stages.append(Stage(base=parts[0], name=parts[2] if len(parts) == 3 else ""))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages(DOCKERFILE.read_text())


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [str(venv_tool("hadolint")), "--no-color", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)


def test_hadolint_is_clean() -> None:
    done = _hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_hadolint_flags_a_careless_dockerfile(tmp_path: Path) -> None:
    """The check above is not vacuous."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nRUN pip install faust\n")
    done = _hadolint(careless)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3042"):
        assert rule in done.stdout


def test_two_stages_on_a_pinned_slim_python(stages: list[Stage]) -> None:
    assert [s.name for s in stages] == ["builder", "runtime"]
    for stage in stages:
        image, _, tag = stage.base.partition(":")
        assert image == "python"
        assert re.fullmatch(r"3\.11(\.\d+)?-slim(-\w+)?", tag), stage.base
    assert stages[0].base == stages[1].base, "the virtualenv is copied between identical interpreters"


def test_base_image_is_a_build_argument_for_the_classic_builder() -> None:
    """CI builds on a base made from Debian's packages with Debian's engine: classic builder, no buildx."""
    text = DOCKERFILE.read_text()
    assert not re.match(r"#\s*syntax=", text), "a syntax directive makes BuildKit pull a frontend from Docker Hub"
    assert not re.search(r"^RUN\s+--mount", text, flags=re.MULTILINE), "RUN --mount needs BuildKit"
    froms = re.findall(r"^FROM (\S+) AS (\w+)$", text, flags=re.MULTILINE)
    assert froms == [("${BUILD_BASE_IMAGE}", "builder"), ("${BASE_IMAGE}", "runtime")]
    assert "ARG BUILD_BASE_IMAGE=${BASE_IMAGE}" in text, "the builder's base defaults to the runtime's"
    assert "/usr/local/bin/python" not in text, "the interpreter's path depends on the base"


def test_builder_installs_the_wheel_from_binary_wheels_only(stages: list[Stage]) -> None:
    run = " ".join(stages[0].all("RUN"))
    assert "pip wheel" in run
    assert "--only-binary=:all:" in run
    assert "--constraint constraints.txt" in run
    assert "check-rules" in run, "the build proves the packaged rule files load"


def test_runtime_has_no_compilers_and_runs_as_a_fixed_non_root_user(stages: list[Stage]) -> None:
    runtime = stages[1]
    for command in runtime.all("RUN"):
        assert not [c for c in COMPILERS if c in f"{command} "], command
    assert runtime.all("COPY") == ["--from=builder /opt/shellwatch /opt/shellwatch"]
    assert runtime.all("USER") == ["10001:10001"]
    assert "ARG UID=10001" in {f"ARG {a}" for a in runtime.all("ARG")}
    assert json.loads(runtime.all("ENTRYPOINT")[0]) == ["shellwatch"]
    assert json.loads(runtime.all("CMD")[0]) == ["worker"]
    env = " ".join(runtime.all("ENV"))
    assert "SHELLWATCH_DATA_DIR=/var/lib/shellwatch" in env
    assert "install -d -o" in " ".join(runtime.all("RUN")), "the data dir belongs to the user"


def test_image_agrees_with_the_chart_and_the_settings(stages: list[Stage]) -> None:
    runtime = stages[1]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    uid = int(runtime.all("USER")[0].split(":")[0])
    assert values["podSecurityContext"]["runAsUser"] == uid
    assert values["securityContext"]["runAsUser"] == uid
    assert runtime.all("EXPOSE") == [str(KafkaSettings().web_port)]
    assert values["service"]["port"] == KafkaSettings().web_port


def test_dockerignore_keeps_what_the_build_copies(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "everything is excluded unless listed"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        source.rstrip("/").removeprefix("./")
        for args in stages[0].all("COPY")
        for source in args.split()[:-1]
        if not source.startswith("--")
    }
    assert copied == included
    for path in copied:
        assert (ROOT / path).exists(), path


def test_runtime_dependencies_are_pinned_for_the_image() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for requirement in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]).lower()
        assert name in pins, f"{name} has no exact pin in constraints.txt"
