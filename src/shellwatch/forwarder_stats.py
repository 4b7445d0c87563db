"""What the stage-1 forwarder did, counted per outcome (the worker exports these as metrics)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ForwarderStats"]


@dataclass(slots=True)
class ForwarderStats:
    """Every consumed record is exactly one of: pre-filtered, forwarded, dead-lettered, other category.

    ``markers``, ``far_future`` and ``batches`` count alongside: progress markers produced, forwarded
    records whose ``@timestamp`` is far ahead of their broker timestamp, and ``getmany`` batches that held
    at least one record.
    """

    records: int = 0
    prefiltered: int = 0
    forwarded: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    markers: int = 0
    other_category: int = 0
    far_future: int = 0
    batches: int = 0

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead_letters.values())

    @property
    def accounted(self) -> int:
        """Records with a known outcome; equals ``records`` after every completed batch."""
        return self.prefiltered + self.forwarded + self.dead_lettered + self.other_category
