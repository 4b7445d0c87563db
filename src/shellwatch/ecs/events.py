"""Typed, frozen events: the ECS subset the rules read, plus the document exactly as received.

Every multi-valued ECS field is a tuple of keyword strings (empty when absent, ``null`` or ``[]``): the
rules' ``==``, ``in`` and ``:`` hold when any element does. Identities used as join keys are single
values or ``None``. ``raw`` keeps the received bytes so alerts can quote them unchanged. ``replayed`` is
set by the worker for records ``shellwatch replay`` produced, so the alerts they raise say so. ``flat`` is the
document as the decode flattened it (:func:`shellwatch.ecs.fields.flatten`: leaf values under dotted paths, as
received), limited to the paths it read: the typed fields' and those of the rule it decoded for, whose
compiled predicates read it (:func:`shellwatch.formats.event_codec.decode_fields`).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

from shellwatch.ecs.fields import Flat

__all__ = ["BundledEvent", "CategoryEvent", "Event", "Kind", "NetworkEvent", "ProcessEvent"]

Kind = Literal["network", "process"]  # the inputs the bundled rules read


@dataclass(frozen=True, slots=True)
class _EcsEvent:
    """The fields every event kind carries."""

    raw: bytes
    timestamp_ms: int | None
    host_id: str | None
    host_name: str | None
    event_id: str | None
    os_types: tuple[str, ...]
    actions: tuple[str, ...]
    entity_id: str | None
    _: KW_ONLY
    replayed: bool = False  # the record came from ``shellwatch replay`` (its header), not from live telemetry
    flat: Flat = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class NetworkEvent(_EcsEvent):
    executables: tuple[str, ...]
    destination_ips: tuple[str, ...]

    @property
    def kind(self) -> Kind:
        return "network"


@dataclass(frozen=True, slots=True)
class ProcessEvent(_EcsEvent):
    names: tuple[str, ...]
    executables: tuple[str, ...]
    args: tuple[str, ...]
    command_lines: tuple[str, ...]
    env_vars: tuple[str, ...]
    parent_entity_id: str | None
    parent_names: tuple[str, ...]
    parent_executables: tuple[str, ...]
    parent_args: tuple[str, ...]
    parent_command_lines: tuple[str, ...]

    @property
    def kind(self) -> Kind:
        return "process"


@dataclass(frozen=True, slots=True)
class CategoryEvent(_EcsEvent):
    """An event of another ``event.category`` (``file``, ``library`` ...) that an operator's rule reads: only the
    common fields are typed; the rule reads the rest from ``flat``."""

    category: str

    @property
    def kind(self) -> str:
        return self.category


BundledEvent = NetworkEvent | ProcessEvent  # what the bundled rules read
Event = NetworkEvent | ProcessEvent | CategoryEvent
