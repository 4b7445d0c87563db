"""Dead-letter headers follow Kafka Connect's ``__connect.errors.*`` convention."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shellwatch.kafka.dead_letters import MAX_MESSAGE_CHARS, dead_letter_headers


def _as_dict(headers: list[tuple[str, bytes | None]]) -> dict[str, bytes | None]:
    return dict(headers)


def test_original_headers_first_then_connect_context() -> None:
    original = [("trace-id", b"abc"), ("empty", b""), ("null", None), ("trace-id", b"dup")]
    headers = dead_letter_headers(
        original,
        topic="edr.process",
        partition=2,
        offset=12345,
        error_class="shellwatch.codec.DecodeError",
        message="invalid JSON: unexpected end of data",
    )
    assert headers[: len(original)] == original
    assert headers[len(original) :] == [
        ("__connect.errors.topic", b"edr.process"),
        ("__connect.errors.partition", b"2"),
        ("__connect.errors.offset", b"12345"),
        ("__connect.errors.stage", b"VALUE_CONVERTER"),
        ("__connect.errors.exception.class.name", b"shellwatch.codec.DecodeError"),
        ("__connect.errors.exception.message", b"invalid JSON: unexpected end of data"),
    ]


@pytest.mark.parametrize("original", [None, [], ()])
def test_no_original_headers(original: list[tuple[str, bytes | None]] | None) -> None:
    headers = dead_letter_headers(original, topic="t", partition=0, offset=0, error_class="E", message="m")
    assert [name for name, _ in headers] == [
        "__connect.errors.topic",
        "__connect.errors.partition",
        "__connect.errors.offset",
        "__connect.errors.stage",
        "__connect.errors.exception.class.name",
        "__connect.errors.exception.message",
    ]


def test_stage_is_configurable() -> None:
    headers = dead_letter_headers(
        None, topic="t", partition=0, offset=0, error_class="E", message="m", stage="KEY_CONVERTER"
    )
    assert _as_dict(headers)["__connect.errors.stage"] == b"KEY_CONVERTER"


def test_long_message_is_truncated() -> None:
    headers = dead_letter_headers(None, topic="t", partition=0, offset=0, error_class="E", message="x" * 50_000)
    message = _as_dict(headers)["__connect.errors.exception.message"]
    assert message is not None
    text = message.decode()
    assert len(text) == MAX_MESSAGE_CHARS
    assert text.endswith("…")


def test_message_at_limit_is_kept_whole() -> None:
    exact = "y" * MAX_MESSAGE_CHARS
    headers = dead_letter_headers(None, topic="t", partition=0, offset=0, error_class="E", message=exact)
    assert _as_dict(headers)["__connect.errors.exception.message"] == exact.encode()


def test_non_ascii_and_lone_surrogates_never_raise() -> None:
    headers = dead_letter_headers(
        None, topic="tópico", partition=0, offset=7, error_class="E", message="bad byte \udcff in «doc»"
    )
    values = _as_dict(headers)
    assert values["__connect.errors.topic"] == "tópico".encode()
    message = values["__connect.errors.exception.message"]
    assert message is not None
    assert message.decode("utf-8").startswith("bad byte \\udcff in «doc»")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        dead_letter_headers(None, topic="t", partition=0, offset=0, error_class="E", message="m", max_message_chars=0)


@given(
    original=st.lists(st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=20)), max_size=5),
    partition=st.integers(min_value=0, max_value=10_000),
    offset=st.integers(min_value=0, max_value=2**63 - 1),
    message=st.text(max_size=3000),
)
def test_properties(original: list[tuple[str, bytes | None]], partition: int, offset: int, message: str) -> None:
    headers = dead_letter_headers(
        original, topic="t", partition=partition, offset=offset, error_class="E", message=message
    )
    assert headers[: len(original)] == original
    assert len(headers) == len(original) + 6
    values = _as_dict(headers[len(original) :])
    assert values["__connect.errors.partition"] == str(partition).encode()
    assert values["__connect.errors.offset"] == str(offset).encode()
    text = values["__connect.errors.exception.message"]
    assert text is not None
    assert text.decode("utf-8") == (
        message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
    )
    assert all(isinstance(v, bytes) for v in values.values())
