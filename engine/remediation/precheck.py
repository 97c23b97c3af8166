"""The pre-check: the target's state read right before a call (``ActionSpec.precheck``), and
in dry-run the same read, alone, when a planned row would have run.

A check that cannot read raises as the action would (retried, then escalated: never acted on
blind); its verdict, or why it could not read, is audited as one ``precheck`` record.
"""

from __future__ import annotations

from typing import Any

from engine.actions.base import ActionSpec
from engine.actions.context import ActionContext, Precheck
from engine.clock import to_ms
from engine.deps import Deps
from engine.errors import ActionError, ConfigError
from engine.events import ErrorEvent
from engine.remediation.outcome import ids_of
from engine.remediation.plan import event_of, render_row
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store

__all__ = ["DRY_RUN_CHECK_WINDOW_S", "Checked", "check_dry_runs"]

DRY_RUN_CHECK_WINDOW_S = 3600
"""A dry-run row is checked when it comes due, not later than this after (a check long after
the fact says nothing about what the action would have done)."""


class Checked:
    """The pre-check of one row: what it read and decided, or why it could not read."""

    def __init__(self, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.ran = False
        self.check: Precheck | None = None
        self.error: ActionError | ConfigError | None = None

    @property
    def skips(self) -> bool:
        """The target no longer needs the action."""
        return self.check is not None and not self.check.act

    def read(self, spec: ActionSpec, params: Any, event: ErrorEvent,
             ctx: ActionContext) -> None:
        """Run the check (a cloud read; the caller holds no lock). A check that cannot read
        raises as the action would: retried, then escalated, never acted on blind."""
        if spec.precheck is None:
            return
        self.ran = True
        try:
            self.check = spec.precheck(params, event, ctx)
        except (ActionError, ConfigError) as exc:
            self.error = exc
            raise

    def audit(self, deps: Deps, row: actions_store.ActionRow, ids: dict[str, str]) -> None:
        """What was read and decided (``act``, ``skip``, ``refuse``) or why not (``error``)."""
        if not self.ran:
            return
        data: dict[str, Any] = {"action": row.action, "reference": row.reference,
                                "dry_run": self.dry_run}
        if self.check is not None:
            data.update(decision="act" if self.check.act else
                        "refuse" if self.check.refuse else "skip",
                        reason=self.check.reason, seen=self.check.seen)
        else:
            data.update(decision="error", error=str(self.error or "no answer"),
                        retry=row.retries)
        deps.audit("precheck", data, **ids)


def check_dry_runs(deps: Deps, *, limit: int = 50) -> int:
    """Dry-run still reads: the pre-check of each dry-run row whose time has come runs (read
    only), is audited (``precheck`` with ``dry_run``) and its verdict kept with the row
    (``would act: ...``, ``nothing to do: ...`` or ``could not check: ...``). Once per row,
    at the time the action would have run; returns how many were checked."""
    names = [name for name, spec in deps.actions.items() if spec.precheck is not None]
    now_ms = to_ms(deps.now())
    rows = actions_store.dry_runs_due(deps.db, now_ms, since_ms=now_ms
                                      - DRY_RUN_CHECK_WINDOW_S * 1000, actions=names,
                                      limit=limit)
    for row in rows:
        incident = incidents_store.get(deps.db, row.incident_id)
        if incident is None:  # never checked again: nothing to check it against
            actions_store.note_result(deps.db, row.id, {"precheck": "could not check: no "
                                                        "incident"})
            continue
        event = event_of(incident)
        checked = Checked(dry_run=True)
        try:
            planned = render_row(deps, row, event, incident)
            checked.read(deps.actions[row.action], planned.params, event, deps.ctx)
        except (ActionError, ConfigError) as exc:
            verdict = f"could not check: {exc}"
        else:
            assert checked.check is not None
            verdict = (f"would act: {checked.check.reason}" if checked.check.act
                       else checked.check.reason)
        checked.audit(deps, row, ids_of(row, incident))
        actions_store.note_result(deps.db, row.id, {"precheck": verdict})
    return len(rows)
