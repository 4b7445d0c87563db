"""Host snapshots as the worker's changelog holds them. The bytes are pinned: a snapshot written by an
earlier version (the literals below) must still restore to the same state, and exporting that state must
write the same bytes again."""

from __future__ import annotations

from dataclasses import replace

from shellwatch.core.correlate import Correlator, Match
from shellwatch.core.snapshot import HostSnapshot
from shellwatch.ecs.events import BundledEvent
from shellwatch.ecs.timestamps import format_rfc3339_ms
from shellwatch.rules.reverse_shell_rule import load_reverse_shell_rule
from tests.unit.builders import T0, bundled, decode

RULE = load_reverse_shell_rule()


def conn(label: str, at: int, host: str, entity: str, replayed: bool = False) -> BundledEvent:
    raw = (
        f'{{"@timestamp":"{format_rfc3339_ms(T0 + at)}","event":{{"id":"{label}","category":["network"],'
        f'"action":"connection_attempted"}},"host":{{"id":"{host}","name":"s\u00e9rveur","os":{{"type":"linux"}}}},'
        f'"process":{{"entity_id":"{entity}","executable":"/usr/bin/java"}},"destination":{{"ip":"8.8.8.8"}}}}'
    ).encode()
    (event,) = bundled(decode(raw))
    return replace(event, replayed=replayed)


def execution(label: str, at: int, host: str, parent: str, replayed: bool = False) -> BundledEvent:
    raw = (
        f'{{"@timestamp":"{format_rfc3339_ms(T0 + at)}","event":{{"id":"{label}","category":["process"],'
        f'"action":"exec"}},"host":{{"id":"{host}","os":{{"type":"linux"}}}},"process":{{"name":"bash",'
        f'"parent":{{"entity_id":"{parent}","executable":"/usr/bin/java","args":["java","-jar","app.jar"]}}}}}}'
    ).encode()
    (event,) = bundled(decode(raw))
    return replace(event, replayed=replayed)


# h1: a pending connection, a held connection, a paired and an unpaired applied exec (replayed ones among
# them); h2: a pending connection and a held exec. Non-ASCII text (latin-1 carried) in the host names.
SCENARIO = [
    conn("c1", 0, "h1", "A"),
    conn("c5", 500, "h1", "P", replayed=True),
    execution("x1", 1000, "h1", "A"),
    conn("c2", 2000, "h1", "B", replayed=True),
    execution("x2", 1500, "h1", "Z", replayed=True),
    conn("c7", 0, "h2", "K"),
    execution("x7", 3000, "h2", "K", replayed=True),
]

PINNED = {
    "h1": (
        b'{"v":1,"progress":[1700000002000,1700000001500],"released":[1700000001500,1,5],"pending":[[1700000000'
        b'500,2,"{\\"@timestamp\\":\\"2023-11-14T22:13:20.500Z\\",\\"event\\":{\\"id\\":\\"c5\\",\\"category\\"'
        b':[\\"network\\"],\\"action\\":\\"connection_attempted\\"},\\"host\\":{\\"id\\":\\"h1\\",\\"name\\":\\'
        b'"s\xc3\x83\xc2\xa9rveur\\",\\"os\\":{\\"type\\":\\"linux\\"}},\\"process\\":{\\"entity_id\\":\\"P\\",'
        b'\\"executable\\":\\"/usr/bin/java\\"},\\"destination\\":{\\"ip\\":\\"8.8.8.8\\"}}"]],"held":[[1700000'
        b'002000,0,4,"{\\"@timestamp\\":\\"2023-11-14T22:13:22.000Z\\",\\"event\\":{\\"id\\":\\"c2\\",\\"catego'
        b'ry\\":[\\"network\\"],\\"action\\":\\"connection_attempted\\"},\\"host\\":{\\"id\\":\\"h1\\",\\"name'
        b'\\":\\"s\xc3\x83\xc2\xa9rveur\\",\\"os\\":{\\"type\\":\\"linux\\"}},\\"process\\":{\\"entity_id\\":\\'
        b'"B\\",\\"executable\\":\\"/usr/bin/java\\"},\\"destination\\":{\\"ip\\":\\"8.8.8.8\\"}}"]],"recent":['
        b'[1700000001000,3,"{\\"@timestamp\\":\\"2023-11-14T22:13:21.000Z\\",\\"event\\":{\\"id\\":\\"x1\\",\\"'
        b'category\\":[\\"process\\"],\\"action\\":\\"exec\\"},\\"host\\":{\\"id\\":\\"h1\\",\\"os\\":{\\"type'
        b'\\":\\"linux\\"}},\\"process\\":{\\"name\\":\\"bash\\",\\"parent\\":{\\"entity_id\\":\\"A\\",\\"execu'
        b'table\\":\\"/usr/bin/java\\",\\"args\\":[\\"java\\",\\"-jar\\",\\"app.jar\\"]}}}",true],[170000000150'
        b'0,5,"{\\"@timestamp\\":\\"2023-11-14T22:13:21.500Z\\",\\"event\\":{\\"id\\":\\"x2\\",\\"category\\":['
        b'\\"process\\"],\\"action\\":\\"exec\\"},\\"host\\":{\\"id\\":\\"h1\\",\\"os\\":{\\"type\\":\\"linux\\'
        b'"}},\\"process\\":{\\"name\\":\\"bash\\",\\"parent\\":{\\"entity_id\\":\\"Z\\",\\"executable\\":\\"/u'
        b'sr/bin/java\\",\\"args\\":[\\"java\\",\\"-jar\\",\\"app.jar\\"]}}}",false]],"replayed":[2,4,5]}'
    ),
    "h2": (
        b'{"v":1,"progress":[1700000000000,1700000003000],"released":[1700000000000,0,6],"pending":[[1700000000'
        b'000,6,"{\\"@timestamp\\":\\"2023-11-14T22:13:20.000Z\\",\\"event\\":{\\"id\\":\\"c7\\",\\"category\\"'
        b':[\\"network\\"],\\"action\\":\\"connection_attempted\\"},\\"host\\":{\\"id\\":\\"h2\\",\\"name\\":\\'
        b'"s\xc3\x83\xc2\xa9rveur\\",\\"os\\":{\\"type\\":\\"linux\\"}},\\"process\\":{\\"entity_id\\":\\"K\\",'
        b'\\"executable\\":\\"/usr/bin/java\\"},\\"destination\\":{\\"ip\\":\\"8.8.8.8\\"}}"]],"held":[[1700000'
        b'003000,1,7,"{\\"@timestamp\\":\\"2023-11-14T22:13:23.000Z\\",\\"event\\":{\\"id\\":\\"x7\\",\\"catego'
        b'ry\\":[\\"process\\"],\\"action\\":\\"exec\\"},\\"host\\":{\\"id\\":\\"h2\\",\\"os\\":{\\"type\\":\\"'
        b'linux\\"}},\\"process\\":{\\"name\\":\\"bash\\",\\"parent\\":{\\"entity_id\\":\\"K\\",\\"executable\\'
        b'":\\"/usr/bin/java\\",\\"args\\":[\\"java\\",\\"-jar\\",\\"app.jar\\"]}}}"]],"recent":[],"replayed":['
        b"7]}"
    ),
}


def pairs(matches: list[Match]) -> list[tuple[str, str, bool, bool, bool]]:
    return sorted(
        (m.connection.event_id or "", m.execution.event_id or "", m.connection.replayed, m.execution.replayed, m.late)
        for m in matches
    )


def restored() -> Correlator:
    correlator = Correlator(RULE)
    for host_id, data in PINNED.items():
        assert correlator.import_host(host_id, HostSnapshot.from_bytes(data)) == []
    return correlator


def test_export_writes_the_pinned_bytes() -> None:
    correlator = Correlator(RULE)
    matches = [m for event in SCENARIO for m in correlator.observe(event)]
    assert pairs(matches) == [("c1", "x1", False, False, False)]
    for host_id, data in PINNED.items():
        snapshot = correlator.export_host(host_id)
        assert snapshot is not None and snapshot.to_bytes() == data


def test_pinned_snapshot_restores_to_the_same_state() -> None:
    correlator = restored()
    assert (correlator.host_count, correlator.pending_count, correlator.held_count) == (2, 2, 2)
    for host_id, data in PINNED.items():
        snapshot = correlator.export_host(host_id)
        assert snapshot is not None and snapshot.to_bytes() == data


def test_restored_state_completes_the_sequences() -> None:
    correlator = restored()
    matches = correlator.observe(conn("c8", 3500, "h2", "L"))  # releases the held exec x7
    matches += correlator.observe(execution("x3", 2500, "h1", "P"))  # releases c2; x3 held
    matches += correlator.observe(conn("c9", 1400, "h1", "Z"))  # late: pairs with the unpaired x2
    matches += correlator.observe(conn("c10", 900, "h1", "A"))  # late: x1 already paired, nothing new
    matches += correlator.flush()  # x3 meets the pending c5
    assert pairs(matches) == [
        ("c5", "x3", True, False, False),
        ("c7", "x7", False, True, False),
        ("c9", "x2", False, True, True),
    ]
    assert (correlator.stats.late, correlator.stats.matches) == (2, 3)
