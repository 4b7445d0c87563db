"""Making attacker-controlled text safe to print to a terminal."""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 controls except tab, DEL, C1 controls (ESC-introduced and 8-bit CSI sequences included).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), so none is interpreted."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)
