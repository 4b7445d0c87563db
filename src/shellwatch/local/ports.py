"""Free TCP ports on 127.0.0.1 for what runs locally: a broker's listeners, a registry, a worker's web port."""

from __future__ import annotations

import socket

__all__ = ["free_port", "free_ports"]


def free_ports(count: int) -> list[int]:
    """*count* distinct ports free now (held open together, so they differ; another process may still take one
    before it is bound again)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One port free now."""
    return free_ports(1)[0]
