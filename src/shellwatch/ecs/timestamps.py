"""``@timestamp`` parsing: ISO-8601 (0-9 fraction digits, any offset) or epoch milliseconds.

Elastic Defend maps ``@timestamp`` as ``date`` (millisecond precision), so every accepted value is
truncated to whole milliseconds since the Unix epoch. Pure functions, no clock.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta

from shellwatch.errors import InvalidTimestampError

__all__ = ["InvalidTimestampError", "format_rfc3339_ms", "parse_timestamp_ms"]

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?)?"
    r"(?P<tz>Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_DIGITS = re.compile(r"\d{1,19}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MIN, _INT64_MAX = -(2**63) + 1, 2**63 - 1  # int64, less its minimum (the correlator's "never")


def parse_timestamp_ms(value: object) -> int:
    """Return epoch milliseconds for an ``@timestamp`` value, truncated toward negative infinity.

    Accepts ISO-8601 strings (no offset means UTC), epoch milliseconds as an integer, a float or a
    string of digits. Raises :class:`InvalidTimestampError` for anything else.
    """
    if isinstance(value, bool):
        raise InvalidTimestampError(f"@timestamp is a boolean: {value!r}")
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidTimestampError(f"@timestamp beyond int64: {value}")
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise InvalidTimestampError(f"@timestamp is not finite: {value!r}")
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidTimestampError(f"@timestamp beyond int64: {value!r}")
        return int(value // 1)
    if not isinstance(value, str):
        raise InvalidTimestampError(f"@timestamp has type {type(value).__name__}")
    fast = _shipper_format_ms(value)
    if fast is not None:
        return fast
    return _parse_text(value)


def _parse_text(value: str) -> int:
    if _DIGITS.fullmatch(value):
        return parse_timestamp_ms(int(value))
    match = _ISO.fullmatch(value)
    if match is None:
        raise InvalidTimestampError(f"@timestamp is not ISO-8601 or epoch millis: {value[:64]!r}")
    return _iso_to_ms(match)


def _shipper_format_ms(value: str) -> int | None:
    """The shippers' exact form, ``YYYY-MM-DDTHH:MM:SS.mmmZ``, without a regex or a datetime: the hour's
    epoch milliseconds are remembered per ``YYYY-MM-DDTHH`` (parsed the general way once); ``None`` for any other
    form (or an invalid hour), which the general parser then takes, with its error."""
    if len(value) != 24 or value[23] != "Z" or value[19] != "." or value[16] != ":" or value[13] != ":":
        return None
    minutes, seconds, millis = value[14:16], value[17:19], value[20:23]
    digits = minutes + seconds + millis
    if not (digits.isascii() and digits.isdigit()) or minutes > "59" or seconds > "59":
        return None
    hour_ms = _hour_ms(value[:13])
    if hour_ms is None:
        return None
    return hour_ms + (int(minutes) * 60 + int(seconds)) * 1000 + int(millis)


@functools.lru_cache(maxsize=4096)
def _hour_ms(hour: str) -> int | None:
    match = _ISO.fullmatch(hour)
    if match is None or match.group("h") is None:
        return None
    try:
        return _iso_to_ms(match)
    except InvalidTimestampError:
        return None


def _iso_to_ms(match: re.Match[str]) -> int:
    g = match.groupdict()
    try:
        moment = datetime(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise InvalidTimestampError(f"@timestamp out of range: {match.group(0)[:64]!r} ({exc})") from None
    millis = int((g["f"] or "0").ljust(3, "0")[:3])
    offset_min = _offset_minutes(g["tz"])
    delta = moment - _EPOCH
    whole_ms = (delta.days * 86_400 + delta.seconds) * 1000
    return whole_ms + millis - offset_min * 60_000


def _offset_minutes(tz: str | None) -> int:
    if tz is None or tz in ("Z", "z"):
        return 0
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise InvalidTimestampError(f"@timestamp offset out of range: {tz!r}")
    return sign * (hours * 60 + minutes)


def format_rfc3339_ms(epoch_ms: int) -> str:
    """Render epoch milliseconds as RFC 3339 UTC with exactly three fraction digits."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
