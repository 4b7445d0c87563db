"""When the record behind an alert reached Kafka, for the detection-latency histogram. Pure: no clock.

An alert's id is a function of its rule, host and exec (:func:`shellwatch.core.alerts.alert_id`), and the exec
is the event that completes an alert of either rule (it comes after its connection in a sequence). So
the worker notes, for each exec it reads, the Kafka record timestamp of the input record it came in
(the forwarder's ``shellwatch.broker_ts`` header) under every alert id that exec could raise; when the
alert is delivered, its latency is measured from that timestamp. The one exception: a connection later
than the allowed lateness that pairs with an exec applied before it; the anchor is then the exec's
record, which overstates that rare alert's latency by the connection's delay.

Bounded: the oldest notes are dropped past ``capacity`` (an alert raised that long after its exec was
read, e.g. from state restored by another worker, has no anchor and the caller falls back).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from shellwatch.core.alerts import alert_id
from shellwatch.ecs.events import Event, ProcessEvent

__all__ = ["RecordTimes"]


class RecordTimes:
    def __init__(self, rule_ids: Sequence[str], capacity: int = 50_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rule_ids = tuple(rule_ids)
        self.capacity = capacity
        self._record_ms: OrderedDict[str, int] = OrderedDict()

    def note(self, events: Iterable[Event], record_ms: int) -> None:
        """The execs among ``events`` arrived in a record with this Kafka timestamp (epoch ms)."""
        for event in events:
            if not isinstance(event, ProcessEvent):
                continue
            for rule_id in self.rule_ids:
                key = alert_id(rule_id, event.host_id or "", event)
                self._record_ms[key] = record_ms
                self._record_ms.move_to_end(key)
        while len(self._record_ms) > self.capacity:
            self._record_ms.popitem(last=False)

    def pop(self, alert_id: str) -> int | None:
        """The record timestamp noted for this alert's exec, forgotten once asked (an alert is raised once)."""
        return self._record_ms.pop(alert_id, None)

    def __len__(self) -> int:
        return len(self._record_ms)
