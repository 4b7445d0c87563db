from __future__ import annotations

import ipaddress

import pytest

from shellwatch.match.comparisons import IpRanges, compile_wildcards, literal_runs, parse_ip


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("/usr/lib/jvm/*", "/usr/lib/jvm/", True),
        ("/usr/lib/jvm/*", "/USR/LIB/JVM/x\ny", True),
        ("/usr/lib/jvm/*", "/usr/lib/jvm", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("k*", "\u212a", False),  # Kelvin sign is not a case form of k for Elasticsearch
        ("s", "\u017f", False),  # nor is the long s a form of s
        ("\u00e9", "\u00c9", True),
        ("a.b", "axb", False),  # regex metacharacters are literal
        ("-jar", "-JaR", True),
    ],
)
def test_wildcards(pattern: str, value: str, matches: bool) -> None:
    assert compile_wildcards([pattern]).matches_one(value) is matches


def test_first_match_names_value_and_pattern() -> None:
    patterns = compile_wildcards(["/bin/java", "/usr/java/*"])
    assert patterns.first_match(["x", "/usr/java/bin/java"]) == ("/usr/java/bin/java", "/usr/java/*")
    assert patterns.first_match(["x"]) is None
    assert not compile_wildcards([]).matches(["anything"])


def test_literal_runs() -> None:
    assert literal_runs("/usr/*/jvm?x*") == ["/usr/", "/jvm", "x"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::FFFF:a01:203", "10.1.2.3"),
        ("2001:DB8::1", "2001:db8::1"),
        ("::1.2.3.4", "::102:304"),
        ("fe80::1%eth0", None),
        ("1.2.3", None),
        ("01.2.3.4", None),
        ("", None),
        ("8.8.8.8/32", None),
    ],
)
def test_parse_ip(text: str, expected: str | None) -> None:
    address = parse_ip(text)
    assert (None if address is None else str(address)) == expected


def test_ranges() -> None:
    ranges = IpRanges.parse(["10.0.0.0/8", "::1", "FE80::/10"])
    assert ranges.containing(ipaddress.ip_address("10.9.9.9")) == "10.0.0.0/8"
    assert ranges.containing(ipaddress.ip_address("::1")) == "::1"
    assert ranges.containing(ipaddress.ip_address("::2")) is None
    with pytest.raises(ValueError, match=r"10\.0\.0\.1/8"):
        IpRanges.parse(["10.0.0.1/8"])
