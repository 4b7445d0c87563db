"""One exception tree: every exception class lives in shellwatch.errors, under ShellwatchError."""

from __future__ import annotations

import ast
from pathlib import Path

from shellwatch import errors

SRC = Path(__file__).parents[2] / "src" / "shellwatch"


def test_every_exception_is_a_shellwatch_error_and_named_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.ShellwatchError), name
        assert name in doc, f"{name} is missing from the tree in the docstring"
    assert issubclass(errors.SettingsError, ValueError)  # callers that caught the built-in bases still do
    assert issubclass(errors.PartitionMismatchError, RuntimeError)


def test_no_module_defines_an_exception_of_its_own() -> None:
    elsewhere = []
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception")) for base in node.bases
            ):
                elsewhere.append(f"{path.relative_to(SRC)}:{node.name}")
    assert elsewhere == []
