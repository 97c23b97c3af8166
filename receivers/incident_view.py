"""An incident at a glance, in words: what failed, what was done and how it ended, what is
pending and until when. Pure functions over the stored incident, its event and its actions;
the pages (receivers/dashboard.py) render what they return.

Actions are worded by what really happened to each row, not by the sentence the planner
stored (always the dry-run form, "would rerun pipeline ..."): planned ("will rerun ...",
"... once approved"), dry-run ("would rerun ... (dry-run)"), running, done ("reran ..."), with
the outcome (the cloud's answer, the verification), failed, skipped (not needed) or
cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from engine import lifecycle
from engine.events import ErrorEvent
from engine.store.actions import ActionRow
from engine.store.incidents import Incident
from engine.text.errorcodes import innermost_target_failure
from engine.text.patterns import TEXT_LIMIT
from receivers.run_links import RunLink, Workspace, action_link

__all__ = [
    "ActionView",
    "Failure",
    "Pending",
    "action_view",
    "failure",
    "headline",
    "one_line",
    "pending",
]

MESSAGE_LIMIT = 240
"""The characters of the error message shown at a glance (the whole one is on the incident's
page)."""

_PAST: dict[str, str] = {
    "analyse": "analysed", "cancel": "cancelled", "close": "closed", "create": "created",
    "do": "did", "move": "moved", "notify": "notified", "open": "opened", "post": "posted",
    "repair": "repaired", "rerun": "reran", "restart": "restarted", "run": "ran",
    "send": "sent", "start": "started", "stop": "stopped",
}
"""The past tense of the verbs the actions' sentences begin with (engine/actions/*,
``describe``); another verb reads "did: <sentence>"."""


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """What failed: its source, resource, most specific error code and the message's first
    line; ``title`` names the incident by them ("pl_copy_sales · UserErrorSourceBlobNotExist")."""

    source: str
    resource: str
    code: str
    message: str
    title: str
    run_id: str = ""
    activity: str = ""


class ActionView(msgspec.Struct, frozen=True, kw_only=True):
    """One action as the operator reads it: ``sentence`` says what was (or will be) done,
    ``outcome`` how it ended; ``link`` goes to the run it started."""

    row: ActionRow
    sentence: str
    outcome: str
    status: str
    """The outcome in a few words, for the list: ``verified``, ``failed: ...``."""
    tone: str
    """``ok``, ``bad``, ``wait`` or ``muted``: the mark beside it."""
    link: RunLink | None = None


class Pending(msgspec.Struct, frozen=True, kw_only=True):
    """Something still to happen, and by when (epoch ms; 0: no deadline)."""

    what: str
    until_ms: int
    label: str
    """What ``until_ms`` is: ``due``, ``deadline`` or ``since``."""
    link: RunLink | None = None
    """The run it is about (the run a verification follows)."""


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The first non-empty line of ``text``, spaces collapsed, cut to ``limit`` with "…"."""
    for line in text[: limit * 8].splitlines():
        words = " ".join(line.split())
        if words:
            return words if len(words) <= limit else words[: limit - 1] + "…"
    return ""


def headline(message: str) -> str:
    """The part of an error message that says what went wrong, on one line: the innermost
    activity's own message (``Operation on target A failed: <this>``) and, in a Data Factory
    exception (``ErrorCode=X,'Type=...,Message=<this>,Source=...'``), its ``Message``."""
    text = message[:TEXT_LIMIT]
    nested = innermost_target_failure(text)
    if nested is not None and nested.inner:
        text = nested.inner
    start = text.find(",Message=")
    if start >= 0 and "ErrorCode=" in text[:start]:
        start += len(",Message=")
        end = text.find(",Source=", start)
        inner = text[start:end if end >= 0 else len(text)].strip(" ,'")
        if inner:
            text = inner
    return one_line(text)


def failure(incident: Incident, event: ErrorEvent | None) -> Failure:
    """What failed, from the incident's event (the incident's own fields when the event is no
    longer stored)."""
    resource = (event.resource if event else "") or incident.resource or incident.source
    code = ""
    message = ""
    run_id = activity = ""
    if event is not None:
        code = event.error_code or (event.error_codes[-1] if event.error_codes else "") \
            or event.failure_type
        message = headline(event.message)
        run_id = event.run_id
        activity = str(event.attributes.get("activity") or event.attributes.get("task_key")
                       or "")
    code = one_line(code, 120)
    title = f"{one_line(resource, 120)} · {code}" if code else one_line(resource, 120)
    return Failure(source=incident.source, resource=resource, code=code, message=message,
                   title=title, run_id=run_id, activity=activity)


def _phrase(description: str) -> str:
    """The stored sentence without its dry-run "would "."""
    return description[6:] if description.startswith("would ") else description


def _past(phrase: str) -> str:
    verb, _, rest = phrase.partition(" ")
    if verb in _PAST:
        return f"{_PAST[verb]} {rest}".rstrip()
    return f"did: {phrase}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _probe(row: ActionRow) -> str:
    if row.probe_state == "running":
        return "verifying"
    if row.probe_state == "succeeded":
        return "verified"
    if row.probe_state == "failed":
        return f"verification failed: {row.error}" if row.error else "verification failed"
    if row.probe_state == "cancelled":
        return "verification stopped"
    return ""


_STATUS = {"dry_run": "dry-run, not done", "waiting_approval": "awaiting approval",
           "planned": "planned", "scheduled": "scheduled", "started": "running",
           "skipped": "not needed", "cancelled": "cancelled"}


def _status(row: ActionRow) -> str:
    if row.state == "succeeded":
        return {"running": "started, verifying", "succeeded": "verified",
                "failed": "verification failed", "cancelled": "done, verification stopped",
                }.get(row.probe_state, "done")
    if row.state == "failed":
        return f"failed: {one_line(row.error, 100)}" if row.error else "failed"
    return _STATUS.get(row.state, row.state)


def action_view(row: ActionRow, event: ErrorEvent | None,
                workspaces: Sequence[Workspace] = ()) -> ActionView:
    """The sentence, outcome and mark of one action row, by its state."""
    phrase = _phrase(row.description) or row.action
    result = row.result if isinstance(row.result, dict) else {}
    detail = str(result.get("detail") or "")
    state = row.state
    outcome, tone, link = "", "wait", None
    if state == "dry_run":
        sentence = f"Would {phrase} (dry-run: not done)"
        outcome, tone = str(result.get("precheck") or ""), "muted"
    elif state == "waiting_approval":
        sentence = f"Will {phrase} once approved"
    elif state in ("planned", "scheduled"):
        sentence = f"Will {phrase}"
        if row.retries:
            outcome = f"retry {row.retries} after: {row.error}" if row.error else ""
    elif state == "started":
        sentence = f"Running: {phrase}"
    elif state == "succeeded":
        sentence = _capital(_past(phrase))
        outcome = "; ".join(p for p in (detail, _probe(row)) if p)
        tone = "bad" if row.probe_state == "failed" else (
            "wait" if row.probe_state == "running" else "ok")
        ref = result.get("ref")
        link = action_link(event, ref, workspaces) if isinstance(ref, dict) else None
    elif state == "failed":
        sentence, outcome, tone = f"Tried to {phrase}: failed", row.error, "bad"
    elif state == "skipped":
        sentence, outcome, tone = f"Did not {phrase}: not needed", detail, "muted"
    elif state == "cancelled":
        sentence, tone = f"Cancelled before it ran: {phrase}", "muted"
    else:
        sentence = f"{_capital(phrase)} ({state})"
    return ActionView(row=row, sentence=sentence, outcome=outcome, status=_status(row),
                      tone=tone, link=link)


def pending(incident: Incident, actions: Sequence[ActionRow], event: ErrorEvent | None = None,
            workspaces: Sequence[Workspace] = ()) -> list[Pending]:
    """What is still to happen for an active incident: the approval and its deadline, the
    next due action, a running action, a verification (of which run) and its deadline."""
    if not lifecycle.active(incident):
        return []
    out: list[Pending] = []
    if incident.state == "waiting_approval":
        out.append(Pending(what="approval", until_ms=incident.approval_due_ms,
                           label="deadline"))
    due = sorted((r for r in actions if r.state == "scheduled"), key=lambda r: r.due_ms)
    if due:
        row = due[0]
        retry = f" (retry {row.retries})" if row.retries else ""
        out.append(Pending(what=f"will {one_line(_phrase(row.description), 60)}{retry}",
                           until_ms=row.due_ms, label="due"))
    for row in actions:
        if row.state == "started":
            out.append(Pending(what=f"running: {one_line(_phrase(row.description), 60)}",
                               until_ms=row.started_ms, label="since"))
        if row.state == "succeeded" and row.probe_state == "running":
            ref = row.result.get("ref") if isinstance(row.result, dict) else None
            link = action_link(event, ref, workspaces) if isinstance(ref, dict) else None
            what = "verifying" if link else \
                f"verifying: {one_line(_past(_phrase(row.description)), 120)}"
            out.append(Pending(what=what, until_ms=row.probe_deadline_ms, label="deadline",
                               link=link))
    return out
