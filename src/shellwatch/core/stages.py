"""The two stage predicates of "Potential Reverse Shell via Java", clause by clause.

Each returns ``None`` when the event fails the stage, else the clauses that held (for the alert's
``detection.explanation``). Semantics are Elasticsearch's (DESIGN §3): any element of an array field
may satisfy ``==``/``in``/``:``; ``not ... in`` holds when no element is listed (and when the field is
absent); ``destination.ip`` that is absent, ``null``, ``[]`` or not an address is null.
"""

from __future__ import annotations

from shellwatch.ecs.events import NetworkEvent, ProcessEvent
from shellwatch.match.comparisons import parse_ip
from shellwatch.rules.model import NetworkStage, ProcessStage

__all__ = ["network_stage_clauses", "process_stage_clauses", "public_destination"]


def public_destination(stage: NetworkStage, values: tuple[str, ...]) -> str | None:
    """The clause text when ``destination.ip`` is a public address per the rule's lists, else ``None``.

    Values that are not IP addresses are dropped (Elasticsearch's ``ip`` type cannot index them); with
    none left the field is null and the connection does not qualify. Any remaining element that is
    excluded (``==`` / ``cidrmatch`` hold when any element does) disqualifies it.
    """
    addresses = [a for a in (parse_ip(v) for v in values) if a is not None]
    if not addresses:
        return None
    for address in addresses:
        if stage.excluded_ip(address) or stage.excluded_cidrs.containing(address) is not None:
            return None
    return f"destination.ip {', '.join(str(a) for a in addresses)} outside the excluded ranges"


def network_stage_clauses(stage: NetworkStage, event: NetworkEvent) -> tuple[str, ...] | None:
    if stage.os_type not in event.os_types:
        return None
    action = next((a for a in event.actions if a in stage.actions), None)
    if action is None:
        return None
    executable = stage.executables.first_match(event.executables)
    if executable is None:
        return None
    destination = public_destination(stage, event.destination_ips)
    if destination is None:
        return None
    return (
        f'host.os.type == "{stage.os_type}"',
        f'event.action in (...) via "{action}"',
        f'process.executable : "{executable[1]}" via "{executable[0]}"',
        destination,
    )


def process_stage_clauses(stage: ProcessStage, event: ProcessEvent) -> tuple[str, ...] | None:
    if stage.os_type not in event.os_types or stage.action not in event.actions:
        return None
    executable = stage.parent_executables.first_match(event.parent_executables)
    if executable is None:
        return None
    jar = stage.parent_args.first_match(event.parent_args)
    if jar is None:
        return None
    name = next((n for n in event.names if n in stage.names), None)
    if name is None:
        return None
    if any(arg in stage.excluded_parent_args for arg in event.parent_args):
        return None
    return (
        f'host.os.type == "{stage.os_type}"',
        f'event.action == "{stage.action}"',
        f'process.parent.executable : "{executable[1]}" via "{executable[0]}"',
        f'process.parent.args : "{jar[1]}" via "{jar[0]}"',
        f'process.name in (...) via "{name}"',
        "not process.parent.args in (excluded launchers)",
    )
