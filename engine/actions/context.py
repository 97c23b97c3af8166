"""What an action gets (its context) and what it gives back (its result and probe result).

Kept free of SDK imports so that ``engine.actions.base`` (seen by the playbook loader) stays
SDK-free: the clients arrive as a :class:`~engine.cloud.clients.Clients` value at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from engine.events import ErrorEvent

if TYPE_CHECKING:
    from engine.cloud.clients import Clients
    from engine.store.incidents import Incident

__all__ = ["ActionContext", "ActionResult", "Analyst", "Outcome", "Precheck", "ProbeResult",
           "ProbeState"]

Outcome = Literal["done", "started", "already_done"]
ProbeState = Literal["running", "succeeded", "failed"]


class ActionResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one action did.

    ``outcome`` is ``started`` when the action set something going that a probe can follow
    (a rerun, a repair, a cluster start), ``done`` when it finished in the call (a webhook,
    a cancel), ``already_done`` when :func:`reconcile` found the call had already been made.
    ``ref`` holds what the probe needs (ids, factory, workspace); it is stored by the worker,
    so it carries no secret.
    """

    outcome: Outcome
    detail: str
    ref: dict[str, str] = msgspec.field(default_factory=dict)
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Precheck(msgspec.Struct, frozen=True, kw_only=True):
    """What a pre-check read in the cloud just before a mutating call, and what it decided.

    ``act`` is True when the target still needs the action (the cluster is terminated, the
    run failed and was not rerun since), False when it no longer does: the action is then not
    called and its row ends ``skipped`` with ``reason`` ("nothing to do: cluster ... is
    RUNNING"). ``seen`` is what was read (states, ids), for the audit; it carries no secret.
    ``refuse`` (with ``act`` False) says that what was read is not what the event describes
    (the run belongs to another pipeline or job): nothing is called and the incident
    escalates with ``reason``, since the alert is wrong or forged and a person must look.
    A check that cannot read the state raises, as the action itself would.
    """

    act: bool
    reason: str
    seen: dict[str, Any] = msgspec.field(default_factory=dict)
    refuse: bool = False


class ProbeResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where the thing an action started stands: still running, succeeded or failed."""

    state: ProbeState
    detail: str


class Analyst(Protocol):
    """The root-cause analysis of the incident an action runs for: bound to that incident by
    the runner (engine/remediation/analyse.py), it reads the incident's history and audits
    its answer (``rca``)."""

    @property
    def incident(self) -> Incident:
        """The incident the action runs for."""
        ...

    def analyse(self, event: ErrorEvent, *, refresh: bool, offline: bool,
                channel: str) -> dict[str, Any]:
        """The analysis of ``event`` (``refresh``: skip the cache; ``offline``: the catalog
        only); ``channel`` is only recorded (the caller posts)."""
        ...


@dataclass(frozen=True)
class ActionContext:
    """Everything an action may use besides its parameters and the event.

    ``clients`` is built once from the settings by the caller; actions never build their own
    clients, which is how the tests point them at the sandbox. ``analyst`` is set by the
    runner for the one row it runs (None elsewhere: an action that needs it refuses).
    """

    clients: Clients
    analyst: Analyst | None = None
