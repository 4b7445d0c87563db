"""The EQL parser's LALR tables ship built (``eql/lalr_tables.pickle``): they must be those of today's grammar,
options and lark version (else run ``scripts/eql-tables``), and parse exactly as the parser built from the grammar."""

from __future__ import annotations

import io
import pickle
import tomllib
from pathlib import Path

import pytest

from shellwatch.eql import grammar
from shellwatch.eql.grammar import _PlainData, build_parser, parser, shipped_tables, tables, tables_digest

VENDORED = Path(__file__).parents[2] / "rules" / "elastic"
SHIPPED_RULES = Path(__file__).parents[3] / "src" / "shellwatch" / "rules"


def test_the_shipped_tables_are_todays() -> None:
    """Built from today's grammar, options and lark version (lark numbers states differently on each build, so
    the tables themselves are compared by what they parse, below)."""
    shipped = shipped_tables()
    assert shipped is not None, "stale or missing eql/lalr_tables.pickle: run scripts/eql-tables"
    assert shipped["digest"] == tables()["digest"] == tables_digest()
    assert parser().source_path == "<deserialized>"  # lark's mark of a parser loaded, not built


def test_the_loaded_parser_parses_as_the_built_one() -> None:
    built = build_parser()
    queries = [
        tomllib.loads(path.read_text())["rule"]["query"]
        for path in [*sorted(VENDORED.glob("*.toml")), SHIPPED_RULES / "potential_reverse_shell_via_java.toml"]
    ]
    assert len(queries) >= 30
    for query in queries:
        assert parser().parse(query) == built.parse(query)


def test_stale_tables_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grammar, "GRAMMAR", grammar.GRAMMAR + "\n// changed\n")
    assert shipped_tables() is None  # parser() then builds from the grammar


def test_the_tables_are_read_as_plain_data_only() -> None:
    with pytest.raises(pickle.UnpicklingError, match=r"not plain data: pathlib\.PosixPath"):
        _PlainData(io.BytesIO(pickle.dumps(Path("/")))).load()
