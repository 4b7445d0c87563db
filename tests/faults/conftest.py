"""The fault suite runs on the same real broker as the integration tests (started once per session).

What each fault test prints (its accounting: expected / present / missing / extra / duplicates, and the failover
times) is repeated at the end of the run even when the test passes, so CI's log carries the numbers.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import kafka_bootstrap, kafka_libs, pytest_collection_modifyitems

__all__ = ["kafka_bootstrap", "kafka_libs", "pytest_collection_modifyitems"]

_PRINTED: list[tuple[str, str, str]] = []  # (test, outcome, what it printed)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.nodeid.startswith("tests/faults/") and report.capstdout.strip():
        _PRINTED.append((report.nodeid, report.outcome, report.capstdout))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _PRINTED:
        return
    terminalreporter.section("fault suite accounting")
    for nodeid, outcome, printed in _PRINTED:
        terminalreporter.write_line(f"{nodeid} ({outcome})")
        for line in printed.splitlines():
            if not line.startswith("[localkafka]"):
                terminalreporter.write_line(f"    {line}")
