"""Alert grouping for shell-spawned-by-java: one alert per (host, Java process, command line, case) per
event-time period. Pure: time is the events' own ``@timestamp``.

The first alert of a group is emitted and opens a period of ``period_ms``; repeats inside it are
suppressed and counted; the first alert after it is emitted with ``suppressed_count`` = the repeats
since the last emitted one, and opens the next period. Callers never pass known-bad alerts here
(they are never suppressed). Groups are capped per host and in hosts, oldest first, and a group whose
period ended with nothing to report is dropped once its host's event time moves past it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import orjson

__all__ = ["AlertGrouper", "GroupStats"]

GroupKey = tuple[str, str, str]  # (java process entity id, command line, case)


@dataclass(slots=True)
class _Group:
    start_ms: int
    suppressed: int = 0


@dataclass(slots=True)
class GroupStats:
    emitted: int = 0
    suppressed: int = 0
    evicted_groups: int = 0


@dataclass(slots=True)
class _HostGroups:
    latest_ms: int = -(2**63)
    groups: OrderedDict[GroupKey, _Group] = field(default_factory=OrderedDict)


class AlertGrouper:
    def __init__(self, period_ms: int, *, max_groups_per_host: int = 10_000, max_hosts: int = 100_000) -> None:
        if period_ms < 0:
            raise ValueError(f"period_ms must be >= 0, got {period_ms}")
        if max_groups_per_host < 1 or max_hosts < 1:
            raise ValueError("max_groups_per_host and max_hosts must be >= 1")
        self.period_ms = period_ms
        self.max_groups_per_host = max_groups_per_host
        self.max_hosts = max_hosts
        self.stats = GroupStats()
        self._hosts: OrderedDict[str, _HostGroups] = OrderedDict()
        self._dirty: set[str] = set()

    def admit(self, host_id: str, key: GroupKey, timestamp_ms: int) -> int | None:
        """``None`` to suppress this alert, else how many repeats it reports (``suppressed_count``)."""
        host = self._host(host_id)
        self._dirty.add(host_id)
        host.latest_ms = max(host.latest_ms, timestamp_ms)
        group = host.groups.get(key)
        if group is not None and timestamp_ms < group.start_ms + self.period_ms:
            group.suppressed += 1
            self.stats.suppressed += 1
            return None
        reported = group.suppressed if group is not None else 0
        host.groups.pop(key, None)
        host.groups[key] = _Group(timestamp_ms)
        while len(host.groups) > self.max_groups_per_host:
            host.groups.popitem(last=False)
            self.stats.evicted_groups += 1
        self._expire(host)
        self.stats.emitted += 1
        return reported

    def drain_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def knows(self, host_id: str) -> bool:
        return host_id in self._hosts

    def export_host(self, host_id: str) -> bytes | None:
        host = self._hosts.get(host_id)
        if host is None or not host.groups:
            return None
        rows = [[*key, group.start_ms, group.suppressed] for key, group in host.groups.items()]
        return orjson.dumps({"latest": host.latest_ms, "groups": rows})

    def import_host(self, host_id: str, data: bytes) -> None:
        """Restore a host's groups; raises ``ValueError`` for bytes that are not an export."""
        try:
            doc = orjson.loads(data)
            host = _HostGroups(int(doc["latest"]))
            for entity, command, case, start_ms, suppressed in doc["groups"]:
                host.groups[(str(entity), str(command), str(case))] = _Group(int(start_ms), int(suppressed))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a group export: {exc}") from None
        self._hosts.pop(host_id, None)
        self._hosts[host_id] = host
        self._trim_hosts()

    def forget_host(self, host_id: str) -> None:
        self._hosts.pop(host_id, None)
        self._dirty.discard(host_id)

    def _host(self, host_id: str) -> _HostGroups:
        host = self._hosts.get(host_id)
        if host is None:
            host = self._hosts[host_id] = _HostGroups()
            self._trim_hosts()
        else:
            self._hosts.move_to_end(host_id)
        return host

    def _trim_hosts(self) -> None:
        while len(self._hosts) > self.max_hosts:
            old_id, old = self._hosts.popitem(last=False)
            self.stats.evicted_groups += len(old.groups)
            self._dirty.add(old_id)

    def _expire(self, host: _HostGroups) -> None:
        horizon = host.latest_ms - self.period_ms
        for key in [k for k, g in host.groups.items() if g.start_ms < horizon and g.suppressed == 0]:
            del host.groups[key]
