"""What every action is: a typed parameter Struct, a description, and (later) a run function.

The playbook loader sees actions only through :class:`ActionSpec` values handed to it, so that
``engine/rules`` never imports an action module or an SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from engine.events import ErrorEvent

__all__ = ["ActionSpec", "Params", "no_target"]


class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every action's parameter Struct: frozen, strict, keyword-only."""


def no_target(event: ErrorEvent) -> dict[str, Any]:
    """For actions that take nothing from the event (notify, ticket)."""
    return {}


@dataclass(frozen=True)
class ActionSpec:
    """The declaration of one action under its stable dotted name.

    ``target(event)`` gives the parameters taken from the event by default (factory, pipeline
    and run id; job, run and cluster id); ``target_fields`` names them, so that a playbook may
    leave them out of ``with:``. A playbook's ``with:`` adds to or overrides them; the merged
    parameters are validated against ``params``. ``mutating`` actions are only planned in
    dry-run.
    """

    name: str
    description: str
    params: type[Params]
    target: Callable[[ErrorEvent], dict[str, Any]] = no_target
    target_fields: tuple[str, ...] = ()
    mutating: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
