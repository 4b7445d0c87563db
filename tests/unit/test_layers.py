"""The import-layer contracts in pyproject.toml hold, and they catch an import that points the wrong way.

Each case copies the package to a temporary folder, adds one forbidden import to one module, and runs
``lint-imports`` with the project's own contracts on the copy: the contract named must break, naming the
edge. The untouched copy must pass, so a failure is the injected import's doing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "src" / "shellwatch", tmp_path / "src" / "shellwatch", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(copy: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", "--config", str(copy / "pyproject.toml")],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_as_it_is_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken", "edge"),
    [
        ("core/stages.py", "import shellwatch.worker.app", "Layers", "shellwatch.core.stages -> shellwatch.worker.app"),
        (
            "ecs/events.py",
            "from shellwatch.core import alerts",
            "Layers",
            "shellwatch.ecs.events -> shellwatch.core.alerts",
        ),
        ("core/correlate.py", "import time", "The detection core", "shellwatch.core.correlate -> time"),
        ("formats/event_codec.py", "import os", "The detection core", "shellwatch.formats.event_codec -> os"),
        (
            "worker/app.py",
            "import shellwatch.local.kafka",
            "Local services",
            "shellwatch.worker.app -> shellwatch.local",
        ),
    ],
)
def test_one_wrong_import_breaks_its_contract(tmp_path: Path, module: str, line: str, broken: str, edge: str) -> None:
    copy = _copy(tmp_path)
    target = copy / "src" / "shellwatch" / module
    target.write_text(target.read_text() + f"\n{line}  # injected\n")
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    report = result.stdout.split("Broken contracts", 1)[1]  # an upward edge may break "pure" as well, transitively
    assert f"\n{broken}" in report, report
    assert edge in report, report
