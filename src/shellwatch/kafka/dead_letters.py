"""Dead-letter headers in the Kafka Connect convention (``__connect.errors.*``).

A record that passes the pre-filter but cannot be decoded is re-published unchanged (key, value, headers)
with these headers appended, so tools written for Connect's dead-letter queues can read it: where it came
from (topic, partition, offset), at which stage it failed, and why. Values are UTF-8 bytes. The original
headers come first and are kept verbatim; should they already carry ``__connect.errors.*`` headers (a
replayed dead letter), ours come last, which is what Java's ``Headers.lastHeader`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

from shellwatch.kafka.headers import (
    ERRORS_CLASS_HEADER,
    ERRORS_MESSAGE_HEADER,
    ERRORS_OFFSET_HEADER,
    ERRORS_PARTITION_HEADER,
    ERRORS_STAGE_HEADER,
    ERRORS_TOPIC_HEADER,
    Header,
)

__all__ = [
    "MAX_MESSAGE_CHARS",
    "ErrorStage",
    "dead_letter_headers",
]

MAX_MESSAGE_CHARS: Final = 1000
_ELLIPSIS: Final = "…"

# Connect's ``org.apache.kafka.connect.runtime.errors.Stage`` names.
ErrorStage = Literal[
    "KEY_CONVERTER",
    "VALUE_CONVERTER",
    "HEADER_CONVERTER",
    "TRANSFORMATION",
    "TASK_PUT",
    "TASK_POLL",
    "KAFKA_PRODUCE",
    "KAFKA_CONSUME",
]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")  # lone surrogates must not make this raise


def _truncated(message: str, limit: int) -> str:
    if len(message) <= limit:
        return message
    return message[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def dead_letter_headers(
    original_headers: Iterable[Header] | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    error_class: str,
    message: str,
    stage: ErrorStage = "VALUE_CONVERTER",
    max_message_chars: int = MAX_MESSAGE_CHARS,
) -> list[Header]:
    """The original headers followed by the ``__connect.errors.*`` context of a failed record.

    ``message`` is cut to ``max_message_chars`` characters (the last one an ellipsis when cut).
    """
    if max_message_chars < 1:
        raise ValueError(f"max_message_chars must be positive, got {max_message_chars}")
    headers: list[Header] = list(original_headers or ())
    headers += [
        (ERRORS_TOPIC_HEADER, _utf8(topic)),
        (ERRORS_PARTITION_HEADER, str(partition).encode()),
        (ERRORS_OFFSET_HEADER, str(offset).encode()),
        (ERRORS_STAGE_HEADER, stage.encode()),
        (ERRORS_CLASS_HEADER, _utf8(error_class)),
        (ERRORS_MESSAGE_HEADER, _utf8(_truncated(message, max_message_chars))),
    ]
    return headers
