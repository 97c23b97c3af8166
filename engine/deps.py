"""What the pipeline's stages, the guards, the remediation and the scheduler share: typed
dependencies, built once per worker (engine/runtime/worker.py) and handed to each of them, so
that a reader learns from a signature what a stage touches (as Alertmanager's stages get
theirs from ``PipelineBuilder``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from engine.actions.base import ActionSpec
from engine.actions.context import ActionContext
from engine.audit import AuditKind
from engine.clock import Clock
from engine.config import EngineSettings
from engine.events import ErrorEvent
from engine.rules.ruleset import PlaybookSet
from engine.store import audit as audit_store
from engine.store.db import Database
from engine.store.ids import new_id

if TYPE_CHECKING:
    from engine.cloud.enrich import EnrichResult

__all__ = ["Deps", "Enrich", "Playbooks", "Rca"]

Rca = Callable[..., dict[str, Any]]
"""The root-cause hook, ``rca(event, history, *, refresh=False, offline=False) -> dict``: the
keywords are passed only when set (by ``rca.analyze``), so a plain ``rca(event, history)``
works too (engine/analysis/service.py ``make_rca`` builds the real one)."""

Enrich = Callable[[ErrorEvent], "EnrichResult"]
"""The cloud look-ups of a firing event (engine/cloud/enrich.py ``enrich`` with the clients
bound); never raises for a cloud failure."""


class Playbooks(Protocol):
    """The playbook set in force, swapped whole on reload (engine/rules/active.py
    ``ActivePlaybooks``): take ``current`` once per use."""

    @property
    def current(self) -> PlaybookSet:
        """The loaded set in force now."""
        ...


@dataclass(frozen=True)
class Deps:
    """The dependencies of one worker: ``db``; ``playbooks``; ``actions`` (the registry's
    table); ``ctx`` (the cloud clients, for the actions); ``live`` (dry-run otherwise);
    ``clock``; the ``rca`` and ``enrich`` hooks (none: no analysis, no look-ups); ``options``
    (``[engine]``); ``owner`` names this process in the intents it commits; ``may_call``
    says whether it may still make a call out.
    """

    db: Database
    playbooks: Playbooks
    actions: Mapping[str, ActionSpec]
    ctx: ActionContext
    live: bool
    clock: Clock
    rca: Rca | None = None
    enrich: Enrich | None = None
    options: EngineSettings = field(default_factory=EngineSettings)
    owner: str = field(default_factory=lambda: new_id("proc"))
    may_call: Callable[[], bool] = field(default=lambda: True)
    """Asked right before each call out: False stops it (this replica's heartbeat may have
    expired, its row taken over; engine/runtime/liveness.py ``may_call``)."""

    def now(self) -> datetime:
        """The current time from the clock."""
        return self.clock.now()

    def audit(self, kind: AuditKind, data: Any = None, **ids: str) -> None:
        """Append one audit record stamped with the clock's time; a kind the log does not
        have is refused (:class:`~engine.errors.UnknownAuditKind`, nothing written)."""
        audit_store.append(self.db, kind, ts=self.now(), data=data, **ids)
