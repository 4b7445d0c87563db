"""Progress markers name every input their source topic carries; the stage's config refuses malformed ones."""

from __future__ import annotations

import pytest

from shellwatch.kafka.headers import AS_OF_HEADER, PROGRESS_HEADER, SOURCE_HEADER
from shellwatch.worker.prefilter.routing import marker_headers
from shellwatch.worker.prefilter.stage import PrefilterConfig


def test_a_mixed_topic_marker_names_every_input_it_carries() -> None:
    headers = dict(marker_headers(("network", "process", "file"), "endpoint", 3, 1_700_000_000_000))
    assert headers == {
        PROGRESS_HEADER: b"network,process,file",
        SOURCE_HEADER: b"endpoint/3",
        AS_OF_HEADER: b"1700000000000",
    }


@pytest.mark.parametrize("kinds", [(), ("",), ("network,process",), (" file",)])
def test_source_topics_need_input_names(kinds: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="input names"):
        PrefilterConfig("b:9092", (("t", kinds),), "relevant", "dead", "g")
