"""Putting one rule's candidate events into Elasticsearch's order, from a stream with bounded disorder.

Elasticsearch sorts a sequence query's hits by ``@timestamp`` (a ``date``: whole milliseconds) and, without
a tiebreaker field, leaves the order of equal timestamps to the index. The order here:

1. ``@timestamp`` in milliseconds;
2. within one millisecond, events of one input (``source``: a topic, or a data stream such as Elastic
   Defend's per-category ``logs-endpoint.events.*``) stay in the order they were read (an agent writes them
   in the order they happened);
3. across inputs, per rule, the event that can fill an earlier stage goes first (as the seed rule puts a
   connection before the exec of the same millisecond), ties by read order.

Disorder is bounded by ``allowed_lateness_ms`` per *scope*: a host-local rule orders each host on its own
(one host's clock or lag never holds back, or makes late, another's), other rules order one scope. An event
is released once its scope has seen an event more than ``allowed_lateness_ms`` newer; an event older than
what its scope already released is *late*: applied at once, best effort, and marked. Per scope at most
``max_held`` events wait (beyond it the oldest millisecond is released early, counted). Pure code.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace

from shellwatch.core.sequence_engine import Candidate

__all__ = ["EventOrder", "order_millisecond"]


def order_millisecond(group: Sequence[Candidate]) -> list[Candidate]:
    """Events of one millisecond in the order above: read order per source, earlier stage first across."""
    queues: dict[str, list[Candidate]] = {}
    for candidate in sorted(group, key=lambda c: c.seq):
        queues.setdefault(candidate.source, []).append(candidate)
    if len(queues) == 1:
        return next(iter(queues.values()))
    heads = {source: 0 for source in queues}
    ordered: list[Candidate] = []
    while heads:
        source = min(heads, key=lambda s: (min(queues[s][heads[s]].stages), queues[s][heads[s]].seq))
        ordered.append(queues[source][heads[source]])
        heads[source] += 1
        if heads[source] == len(queues[source]):
            del heads[source]
    return ordered


@dataclass(slots=True)
class _Scope:
    newest_ms: int
    released_below_ms: int  # everything older than this has been released: an older arrival is late
    held: list[tuple[int, int, Candidate]] = field(default_factory=list)


class EventOrder:
    """A reorder buffer per scope; :meth:`push` returns the events now certain of their place, in order."""

    def __init__(self, allowed_lateness_ms: int, *, max_held: int = 50_000) -> None:
        if allowed_lateness_ms < 0:
            raise ValueError("allowed_lateness_ms must be >= 0")
        if max_held < 1:
            raise ValueError("max_held must be >= 1")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.max_held = max_held
        self._scopes: dict[Hashable, _Scope] = {}
        self.late = 0
        self.forced = 0

    def held_count(self) -> int:
        return sum(len(scope.held) for scope in self._scopes.values())

    def push(self, scope_key: Hashable, candidate: Candidate) -> list[Candidate]:
        scope = self._scopes.get(scope_key)
        if scope is None:
            scope = _Scope(candidate.timestamp_ms, candidate.timestamp_ms - self.allowed_lateness_ms)
            self._scopes[scope_key] = scope
        if candidate.timestamp_ms < scope.released_below_ms:
            self.late += 1
            return [replace(candidate, late=True)]
        heapq.heappush(scope.held, (candidate.timestamp_ms, candidate.seq, candidate))
        scope.newest_ms = max(scope.newest_ms, candidate.timestamp_ms)
        released = self._release(scope, scope.newest_ms - self.allowed_lateness_ms)
        while len(scope.held) > self.max_held:
            self.forced += 1
            released.extend(self._release(scope, scope.held[0][0] + 1))
        return released

    def flush(self) -> list[Candidate]:
        """Release everything held (end of input), each scope in order, scopes by their oldest event."""
        released: list[Candidate] = []
        scopes = sorted((s for s in self._scopes.values() if s.held), key=lambda s: s.held[0][:2])
        for scope in scopes:
            released.extend(self._release(scope, scope.newest_ms + 1))
        self._scopes.clear()
        return released

    @staticmethod
    def _release(scope: _Scope, below_ms: int) -> list[Candidate]:
        """Every held event older than ``below_ms``, millisecond by millisecond."""
        released: list[Candidate] = []
        held = scope.held
        while held and held[0][0] < below_ms:
            millisecond = held[0][0]
            group = []
            while held and held[0][0] == millisecond:
                group.append(heapq.heappop(held)[2])
            released.extend(order_millisecond(group))
        scope.released_below_ms = max(scope.released_below_ms, below_ms)
        return released
