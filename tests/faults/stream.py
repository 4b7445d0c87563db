"""A live feed for the fault suite: the workload produced at a steady pace while faults are injected, the alerts
read back with the time each was produced, a supervisor that restarts exited workers, and failover times.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from shellwatch.ecs.timestamps import parse_timestamp_ms
from shellwatch.formats.alert_codec import decode_alert
from shellwatch.kafka.clock import wall_clock_ms
from shellwatch.kafka.documents import produce_documents
from shellwatch.kafka.partitioning import java_partition
from shellwatch.rules.eql_rule import EqlRule
from tests.faults.workload import Accounting, account, matched_events, mispair_lines, missing_alerts, missing_lines
from tests.integration.deployment import PARTITIONS, Deployment
from tests.shared import offline_alerts

__all__ = [
    "Outcome",
    "PacedProducer",
    "Supervisor",
    "TimedAlert",
    "alerts_flowing_after",
    "group_members",
    "outcome",
    "read_alerts",
    "wait_replaced",
]

# Idempotent, so a broker restart neither reorders nor duplicates the input (the worker's input order is the test);
# produce_documents' producer is idempotent already; here librdkafka logs critical lines only (not a
# connection-refused line every few ms while a broker restarts; a failed delivery still raises)
FEED_PRODUCER = {"log_level": 2}


class PacedProducer:
    """Produces ``docs`` (in event-time order) from a background thread as a live feed would: each when as much
    wall time has passed since the first as event time has (divided by ``speed``), until all are sent or
    :meth:`stop`. :meth:`finish` returns the documents sent (a prefix of ``docs``: what offline detection of
    the same feed must see)."""

    def __init__(self, deployment: Deployment, docs: list[dict[str, Any]], *, speed: float = 1.0) -> None:
        self.deployment, self.docs = deployment, docs
        self._first_ms, self._speed = parse_timestamp_ms(docs[0]["@timestamp"]), speed
        self._due_s = [(parse_timestamp_ms(doc["@timestamp"]) - self._first_ms) / 1000 / speed for doc in docs]
        self.sent = 0
        self.started_s, self.started_ms = 0.0, 0
        self.ended_s: float | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._acked = 0
        self._thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)

    def start(self) -> PacedProducer:
        self.started_s, self.started_ms = time.monotonic(), wall_clock_ms()
        self._thread.start()
        return self

    def produced_ms(self, event_ms: int) -> int:
        """When (wall clock) the document with this event time was produced, or is due."""
        return self.started_ms + round((event_ms - self._first_ms) / self._speed)

    def elapsed_s(self) -> float:
        """Seconds since the feed started, or how long it ran once it ended."""
        return (self.ended_s or time.monotonic()) - self.started_s

    def producing(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def finish(self, timeout_s: float = 120.0) -> list[dict[str, Any]]:
        """Stop (if still producing), wait until every document sent is acknowledged; the documents sent."""
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise AssertionError(f"the producer did not finish within {timeout_s:.0f} s")
        if self._error is not None:
            raise AssertionError(f"producing failed: {self._error!r}") from self._error
        assert self._acked == self.sent, (self._acked, self.sent)
        return self.docs[: self.sent]

    def _paced(self) -> Iterator[dict[str, Any]]:
        for doc, due_s in zip(self.docs, self._due_s, strict=True):
            delay = self.started_s + due_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self._stop.is_set():
                return
            self.sent += 1
            yield doc

    def _run(self) -> None:
        d = self.deployment
        try:
            self._acked = produce_documents(
                d.bootstrap,
                self._paced(),
                network_topic=d.network,
                process_topic=d.process,
                producer_config=FEED_PRODUCER,
            )
        except BaseException as exc:
            self._error = exc
        finally:
            self.ended_s = time.monotonic()


@dataclass(frozen=True)
class TimedAlert:
    alert: dict[str, Any]
    produced_ms: int  # the alert record's Kafka timestamp: when the worker sent it (its create time)

    @property
    def partition(self) -> int:
        """The input (and relevant) partition of the alert's host: which worker's share it came from."""
        return java_partition(str(self.alert["host"]["id"]).encode(), PARTITIONS)


def read_alerts(
    bootstrap: str,
    topic: str,
    expected: set[str],
    *,
    timeout_s: float,
    settle_s: float,
    quiet_s: float = 12.0,
    tick: Callable[[], None] | None = None,
    drained: Callable[[], bool] | None = None,
) -> list[TimedAlert]:
    """Every alert on ``topic`` until all ``expected`` ids are there (then ``settle_s`` more, for late extras and
    duplicates), or none came for ``quiet_s`` (read once the feed has ended: the workers are done, and a test that
    lost alerts does not wait ``timeout_s`` for them), or ``timeout_s`` passed; ``tick`` is called about once a
    second meanwhile (supervision). With ``drained``, quiet counts only once it says the workers have nothing left
    to read (checked about every 2 s, and again before quiet ends the read): a worker catching up on a backlog
    may be quiet for longer than ``quiet_s``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"shellwatch-fault-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    alerts: list[TimedAlert] = []
    missing = set(expected)
    deadline = time.monotonic() + timeout_s
    settle_end: float | None = None
    next_tick = next_drain_check = last_s = time.monotonic()
    checks: list[tuple[float, bool, float]] = []  # (seconds into the read, drained, seconds it took) per check
    started_s = last_s
    try:
        while True:
            now = time.monotonic()
            if now >= (settle_end if settle_end is not None else deadline):
                break
            quiet = settle_end is None and now >= last_s + quiet_s
            # quiet ends the read only if a backlog check made now says the workers have nothing left: a check
            # on a schedule alone let a read that was held up elsewhere stop with the workers still far behind
            if drained is not None and (quiet or now >= next_drain_check):
                done = drained()
                checks.append((time.monotonic() - started_s, done, time.monotonic() - now))
                next_drain_check = time.monotonic() + 2.0
                if not done:
                    last_s = time.monotonic()  # still reading: quiet does not count yet
                    quiet = False
            if quiet:
                break
            if time.monotonic() >= next_tick:
                if tick is not None:
                    tick()
                next_tick = time.monotonic() + 1.0
            message = consumer.poll(0.2)
            if message is None or message.error() is not None:
                continue
            last_s = time.monotonic()
            alert = decode_alert(message.value() or b"{}")
            alerts.append(TimedAlert(alert, message.timestamp()[1]))
            missing.discard(str(alert.get("event", {}).get("id")))
            if not missing and settle_end is None:
                settle_end = min(deadline, time.monotonic() + settle_s)
    finally:
        consumer.close()
    if drained is not None:  # a long read (the soak): say why it ended
        now = time.monotonic()
        why = (
            "every expected alert read"
            if settle_end is not None
            else f"timed out after {timeout_s:.0f} s"
            if now >= deadline
            else f"no alert for {quiet_s:.0f} s and no backlog left"
        )
        last = f"last at {checks[-1][0]:.0f} s: drained={checks[-1][1]}" if checks else "none"
        slowest = max((took for *_, took in checks), default=0.0)
        print(
            f"[reader] stopped after {now - started_s:.0f} s: {why}; {len(checks)} backlog checks ({last}; "
            f"the slowest took {slowest:.1f} s)"
        )
    return alerts


def alerts_flowing_after(alerts: list[TimedAlert], fault_ms: int, until_ms: int | None = None) -> dict[int, float]:
    """Per partition: seconds from ``fault_ms`` to the first alert of that partition's hosts produced after it
    (before ``until_ms``); a partition without one is left out. Their maximum is when alerts flow again
    everywhere: the partitions a killed worker held stall until their new owner has taken over."""
    first: dict[int, int] = {}
    for timed in alerts:
        ms = timed.produced_ms
        if ms >= fault_ms and (until_ms is None or ms < until_ms):
            p = timed.partition
            first[p] = min(first.get(p, ms), ms)
    return {p: (ms - fault_ms) / 1000 for p, ms in sorted(first.items())}


def group_members(deployment: Deployment, admin: AdminClient | None = None) -> dict[str, frozenset[str]] | None:
    """The member ids of both consumer groups (pre-filter and agent) if both are stable, else None."""
    admin = admin or AdminClient({"bootstrap.servers": deployment.bootstrap})
    groups = [f"{deployment.app_id}-prefilter", deployment.app_id]
    try:
        described: list[Any] = [f.result(timeout=10) for f in admin.describe_consumer_groups(groups).values()]
    except KafkaException:  # no coordinator (yet, or the broker is away)
        return None
    if not all(str(d.state).endswith("STABLE") for d in described):
        return None
    return {d.group_id: frozenset(m.member_id for m in d.members) for d in described}


def wait_replaced(
    deployment: Deployment, before: dict[str, frozenset[str]], members: int, timeout_s: float
) -> dict[str, frozenset[str]]:
    """Until both groups are stable with ``members`` members and neither is the membership ``before`` (a killed
    worker stays a member until its session times out: the groups look stable meanwhile)."""
    admin = AdminClient({"bootstrap.servers": deployment.bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = group_members(deployment, admin)
        if now is not None and all(len(ids) == members and ids != before.get(g) for g, ids in now.items()):
            return now
        time.sleep(0.3)
    raise AssertionError(f"the groups did not settle with {members} new members within {timeout_s:.0f} s")


@dataclass(frozen=True)
class Outcome:
    """The alerts a feed got, accounted against offline detection of the documents sent."""

    result: Accounting
    timed: list[TimedAlert]
    offline: list[dict[str, Any]]
    examples: list[str]  # a few mis-paired and missing alerts, for the diagnosis

    def missing(self) -> list[dict[str, Any]]:
        """The offline alerts that never came."""
        return missing_alerts(self.offline, (t.alert for t in self.timed))

    def mispaired(self) -> list[dict[str, Any]]:
        """The alert records that quote other events than offline detection's alert of the same id."""
        pairs = {str(a["event"]["id"]): matched_events(a) for a in self.offline}
        alerts = (t.alert for t in self.timed)
        return [a for a in alerts if pairs.get(str(a["event"]["id"]), matched_events(a)) != matched_events(a)]


def outcome(
    deployment: Deployment,
    run: str,
    sent: list[dict[str, Any]],
    *,
    timeout_s: float = 240.0,
    tick: Callable[[], None] | None = None,
    rules: Sequence[EqlRule] = (),
) -> Outcome:
    """Read the deployment's alerts (see :func:`read_alerts`) and account for them, pairing checked; ``rules``:
    the operator's rules the workers run (``SHELLWATCH_RULES``), whose alerts are expected too."""
    offline = offline_alerts(sent, rules)
    pairs = {str(a["event"]["id"]): matched_events(a) for a in offline}
    timed = read_alerts(deployment.bootstrap, deployment.alerts, set(pairs), timeout_s=timeout_s, settle_s=5, tick=tick)
    alerts = [t.alert for t in timed]
    result = account(run, set(pairs), alerts, pairs)
    examples = mispair_lines(alerts, pairs) + missing_lines(offline, alerts, limit=5)
    return Outcome(result, timed, offline, examples)


class Supervisor:
    """Restarts workers of a deployment that exited on their own (as Kubernetes would), and says so."""

    def __init__(self, deployment: Deployment, clock_s: Callable[[], float] = time.monotonic) -> None:
        self.deployment = deployment
        self.clock_s = clock_s
        self.restarts: list[str] = []

    def check(self) -> None:
        d = self.deployment
        for worker in list(d.workers):
            status = worker.exit_status()
            if status is None:
                continue
            name = worker.log_path.name
            worker.stop()  # reaps it and closes its log; it stays listed, so the replacement's log is a new file
            replacement = d.start_worker()
            note = (
                f"[supervisor] {name} exited with status {status} at {wall_clock_ms()}; "
                f"restarted as {replacement.log_path.name}; its last lines:\n{worker.log_tail(12)}"
            )
            print(note)
            self.restarts.append(note.splitlines()[0])
