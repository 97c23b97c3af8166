"""What the engine made of an event a command just sent: wait (bounded) until the event is
done or parked, then find its incident, the rule and the actions (``send-test``, ``drill``).

Everything is read through the running server's ``/api`` with an admin key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from cli.client import admin_refused, fetch
from engine.text.redact import redact_text

__all__ = ["Decision", "ReadbackError", "decision", "get", "has_engine", "lines"]

POLL_S = 0.2
READ_S = 10.0
"""The most one read back may take, its answer read whole (cli/client.py's fetch)."""


class ReadbackError(Exception):
    """The answer could not be read: the server refused or failed, or the engine did not
    finish in time (the message says which)."""


@dataclass
class Decision:
    """The event as the engine left it, the rule that matched, the incident, its actions."""

    event: dict[str, Any]
    rule: dict[str, Any] | None = None
    incident: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)


def get(client: httpx.Client, url: str, admin_key: str, path: str,
        params: dict[str, str] | None = None, *, within: float = READ_S) -> dict[str, Any]:
    """``GET /api<path>``'s JSON object, read within ``within`` seconds; ReadbackError on
    anything but 200 with a JSON object."""
    try:
        answer = fetch(client, "GET", f"{url}/api{path}", within=within, params=params,
                       headers={"x-api-key": admin_key})
        if answer.status_code == 200:
            return answer.object()
    except httpx.HTTPError as exc:
        raise ReadbackError(f"cannot read {path} back: {redact_text(str(exc))}") from exc
    if answer.status_code == 401:
        raise ReadbackError(admin_refused(url))
    raise ReadbackError(f"GET /api{path} answered {answer.status_code}: "
                        f"{redact_text(answer.text[:300])}")


def has_engine(client: httpx.Client, url: str, admin_key: str) -> bool:
    """Whether the server runs the engine (``/api/status`` answers 503 ``no_engine`` when it
    runs the receivers only: nothing would ever decide)."""
    try:
        answer = fetch(client, "GET", f"{url}/api/status", within=READ_S,
                       headers={"x-api-key": admin_key})
    except httpx.HTTPError as exc:
        raise ReadbackError(f"cannot read /status back: {redact_text(str(exc))}") from exc
    if answer.status_code == 401:
        raise ReadbackError(admin_refused(url))
    return answer.status_code != 503


def _wait_for_event(client: httpx.Client, url: str, admin_key: str, event_id: str,
                    timeout: float) -> dict[str, Any]:
    """The event once the engine is done with it (or parked it); ReadbackError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        event = get(client, url, admin_key, f"/events/{event_id}",
                    within=min(READ_S, max(left, POLL_S)))
        if event.get("state") in ("done", "parked"):
            return dict(event)
        if time.monotonic() >= deadline:
            raise ReadbackError(f"the engine did not finish event {event_id} within "
                                f"{timeout:g} s (state {event.get('state')}); is its worker "
                                "running?")
        time.sleep(POLL_S)


def _incident_of(client: httpx.Client, url: str, admin_key: str,
                 event: dict[str, Any]) -> dict[str, Any] | None:
    """The incident the event opened or joined, if any (its recent incidents, newest first,
    whose timeline names the event)."""
    listed = get(client, url, admin_key, "/incidents",
                 {"source": event["source"], "resource": event["resource"], "limit": "20"})
    for item in listed.get("items", []):
        detail = get(client, url, admin_key, f"/incidents/{item['id']}")
        ids = {e.get("id", "") for e in detail.get("events", [])}
        if any(i == event["id"] or i.startswith(f"{event['id']}.") for i in ids):
            return dict(detail)
    return None


def decision(client: httpx.Client, url: str, admin_key: str, event_id: str,
             timeout: float) -> Decision:
    """Wait up to ``timeout`` seconds for the engine to finish ``event_id``, then read what
    it decided (ReadbackError for answers of another shape than Remediator's)."""
    try:
        return _decision(client, url, admin_key, event_id, timeout)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReadbackError(f"{url} answered JSON of another shape than Remediator's "
                            f"({type(exc).__name__}: {str(exc)[:100]}): is it Remediator?"
                            ) from exc


def _decision(client: httpx.Client, url: str, admin_key: str, event_id: str,
              timeout: float) -> Decision:
    event = _wait_for_event(client, url, admin_key, event_id, timeout)
    received = event.get("received") or {}
    found = Decision(event={
        "id": event_id, "state": event.get("state"), "source": event.get("source"),
        "kind": event.get("kind"), "status": event.get("status"),
        "resource": event.get("resource"), "run_id": event.get("run_id"),
        "error_code": event.get("error_code"), "error_codes": event.get("error_codes"),
        "received_error_code": received.get("error_code", event.get("error_code")),
        "message": event.get("message"), "reason": event.get("reason"),
        "processing_error": event.get("processing_error"),
    })
    if event.get("state") == "parked":
        return found
    incident = _incident_of(client, url, admin_key, event)
    if incident is not None:
        found.incident = {k: incident.get(k) for k in (
            "id", "state", "reason", "rule_id", "target", "attempts", "events")}
        found.actions = [{k: row.get(k) for k in (
            "action", "phase", "state", "dry_run", "due_at", "description", "error")}
            for row in incident.get("actions", [])]
        rule_id = incident.get("rule_id") or ""
        if rule_id:
            rules = get(client, url, admin_key, "/playbooks").get("rules", [])
            where = next((f"{r['file']}:{r['line']}" for r in rules if r["id"] == rule_id), "")
            found.rule = {"id": rule_id, "where": where}
    return found


def lines(found: Decision) -> list[str]:
    """``rule:``, ``incident:`` and one ``action:`` line each, as a person reads them."""
    rule, incident = found.rule, found.incident
    out = [f"rule:     {rule['id']} ({rule['where']})" if rule else "rule:     none matched"]
    if incident is None:
        return [*out, "incident: none"]
    out.append(f"incident: {incident['id']} {incident['state']}: {incident.get('reason')}")
    for action in found.actions:
        mode = " (dry-run)" if action.get("dry_run") and action["state"] != "dry_run" else ""
        due = f", due {action['due_at']}" if action.get("state") == "scheduled" else ""
        out.append(f"action:   {action['phase']} {action['action']} {action['state']}"
                   f"{mode}{due}")
    return out
