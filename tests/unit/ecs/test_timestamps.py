from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shellwatch.ecs.timestamps import InvalidTimestampError, _parse_text, format_rfc3339_ms, parse_timestamp_ms

BASE = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-14T22:13:20Z", BASE),
        ("2023-11-14T22:13:20", BASE),
        ("2023-11-14T22:13:20.1Z", BASE + 100),
        ("2023-11-14T22:13:20.12Z", BASE + 120),
        ("2023-11-14T22:13:20.123Z", BASE + 123),
        ("2023-11-14T22:13:20.123999999Z", BASE + 123),
        ("2023-11-14T22:13:20,5Z", BASE + 500),
        ("2023-11-15T00:13:20.000+02:00", BASE),
        ("2023-11-14T20:43:20-0130", BASE),
        ("2023-11-15T03:13:20+05", BASE),
        ("2023-11-14T22:13Z", BASE - 20_000),
        ("2023-11-14", BASE - 80_000_000),
        (BASE, BASE),
        (float(BASE) + 0.9, BASE),
        (str(BASE), BASE),
        ("0", 0),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2099-01-01T00:00:00Z", 4_070_908_800_000),
    ],
)
def test_accepted_forms(value: object, expected: int) -> None:
    assert parse_timestamp_ms(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2023-13-01T00:00:00Z",
        "2023-11-14T25:00:00Z",
        "2023-11-14T22:13:20.1234567890Z",
        "2023-11-14T22:13:20+24:00",
        " 2023-11-14T22:13:20Z",
        "-5",
        "1e12",
        True,
        None,
        {"a": 1},
        [1],
        float("nan"),
        2**63,
        "99999999999999999999",
    ],
)
def test_rejected_forms(value: object) -> None:
    with pytest.raises(InvalidTimestampError):
        parse_timestamp_ms(value)


def test_format_round_trips() -> None:
    assert format_rfc3339_ms(BASE + 7) == "2023-11-14T22:13:20.007Z"
    assert parse_timestamp_ms(format_rfc3339_ms(BASE + 7)) == BASE + 7


@given(st.integers(min_value=-30_610_224_000_000, max_value=253_402_300_799_999))  # years 1000-9999
def test_the_shippers_form_parses_as_the_general_parser_does(epoch_ms: int) -> None:
    text = format_rfc3339_ms(epoch_ms)
    assert parse_timestamp_ms(text) == _parse_text(text) == epoch_ms


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:60:00.000Z",
        "2026-01-01T00:00:60.000Z",
        "2026-02-30T00:00:00.000Z",
        "2026-01-01T24:00:00.000Z",
        "2026-01-01T00:00:00.0a0Z",
        "2026-01-01T00:0\u0663:00.000Z",  # an Arabic-Indic digit
        "2026-01-01T00:00:00.000+",
    ],
)
def test_near_misses_of_the_shippers_form_fail_as_the_general_parser_does(text: str) -> None:
    with pytest.raises(InvalidTimestampError):
        _parse_text(text)
    with pytest.raises(InvalidTimestampError):
        parse_timestamp_ms(text)
