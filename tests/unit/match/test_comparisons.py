from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shellwatch.match.comparisons import IpAddress, IpRanges, compile_wildcards, literal_runs, parse_ip


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


NETWORKS = st.one_of(
    st.builds(lambda a, p: f"{ipaddress.IPv4Address(a)}/{p}", st.integers(0, 2**32 - 1), st.integers(0, 32)),
    st.builds(lambda a, p: f"{ipaddress.IPv6Address(a)}/{p}", st.integers(0, 2**128 - 1), st.integers(0, 128)),
).map(lambda spec: str(ipaddress.ip_network(spec, strict=False)))
ADDRESSES = st.one_of(
    st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address), st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(NETWORKS, min_size=1, max_size=8), st.lists(ADDRESSES, max_size=8), st.data())
def test_a_range_check_is_ipaddress_membership(
    specs: list[str], addresses: list[IpAddress], data: st.DataObject
) -> None:
    ranges = IpRanges.parse(specs)
    inside = [ipaddress.ip_network(data.draw(st.sampled_from(specs)))[0]]  # some addresses are in some range
    for address in [*addresses, *inside]:
        networks = [(s, ipaddress.ip_network(s)) for s in specs]
        expected = next((s for s, n in networks if n.version == address.version and address in n), None)
        assert ranges.containing(address) == expected


def test_parsed_addresses_are_shared_and_unchanged() -> None:
    first = parse_ip("185.220.101.4")
    assert first is parse_ip("185.220.101.4") and first == ipaddress.IPv4Address("185.220.101.4")
    assert parse_ip("010.1.1.1") is None and parse_ip("::ffff:10.1.1.1") == ipaddress.IPv4Address("10.1.1.1")
