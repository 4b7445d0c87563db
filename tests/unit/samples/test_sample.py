from __future__ import annotations

from pathlib import Path

import orjson

from shellwatch.samples.build import sample_documents

SAMPLE = Path(__file__).parents[3] / "src" / "shellwatch" / "samples" / "sample-attack.ndjson"


def test_committed_sample_is_the_generator_output() -> None:
    expected = b"".join(orjson.dumps(doc) + b"\n" for doc in sample_documents())
    assert SAMPLE.read_bytes() == expected
