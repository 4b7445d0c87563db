"""Free local ports: distinct when asked for together, and free to bind once returned."""

from __future__ import annotations

import socket

from shellwatch.local.ports import free_port, free_ports


def test_ports_asked_for_together_differ_and_can_be_bound() -> None:
    ports = [*free_ports(5), free_port()]
    assert len(set(ports[:5])) == 5 and all(0 < port < 65536 for port in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
            sock.listen()
