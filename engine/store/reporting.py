"""Read-side queries for the dashboard, the bench and the replay: bounded, index-backed.

``create_schema`` adds the indexes these queries need (incidents by resource/source/time,
audit by event, closed incidents by time); every query here is bounded by a limit or a time
window so that a page stays cheap with a million audit records.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from engine.events import ErrorEvent
from engine.store import inbox
from engine.store.actions import ActionRow, for_incident
from engine.store.incidents import Incident
from engine.store.query import Where

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = [
    "Bucket",
    "PlannedStep",
    "Recorded",
    "create_schema",
    "event_outcomes",
    "failures_over_time",
    "incident_actions",
    "incident_event",
    "rca_summaries",
    "remediations_over_time",
]


class Bucket(msgspec.Struct, frozen=True):
    """A count in one time bucket (``start_ms``) for one series (a source, an outcome)."""

    start_ms: int
    series: str
    count: int


def create_schema(db: Database) -> None:
    """The indexes of the read side (no tables of its own)."""
    db.utils["incidents"].create_index(["resource", "opened_ms"], if_not_exists=True)
    db.utils["incidents"].create_index(["source", "opened_ms"], if_not_exists=True)
    db.utils["incidents"].create_index(["state", "opened_ms"], if_not_exists=True)
    db.utils["incidents"].create_index(["opened_ms"], if_not_exists=True)
    db.utils["incidents"].create_index(["closed_ms"], if_not_exists=True)
    db.utils["audit"].create_index(["event_id", "seq"], if_not_exists=True)


def failures_over_time(db: Database, *, since_ms: int, bucket_ms: int) -> list[Bucket]:
    """Incidents opened since ``since_ms`` (distinct failures), per bucket and source."""
    return _over_time(db, "opened_ms", "source", since_ms=since_ms, bucket_ms=bucket_ms)


def remediations_over_time(db: Database, *, since_ms: int, bucket_ms: int) -> list[Bucket]:
    """Incidents closed since ``since_ms``, counted per bucket and final state (outcome)."""
    return _over_time(db, "closed_ms", "state", since_ms=since_ms, bucket_ms=bucket_ms)


def _over_time(db: Database, moment: str, series: str, *, since_ms: int,
               bucket_ms: int) -> list[Bucket]:
    """Incidents counted per ``bucket_ms`` of their ``moment`` column (0: not yet) and per
    ``series`` column."""
    where = Where().at_least(moment, since_ms).where(f"{moment} > ?", 0)
    rows = db.query(
        f"SELECT ({moment} / ?) * ? AS b, {series} AS s, count(*) AS n FROM incidents"
        f"{where.sql} GROUP BY b, s ORDER BY b, s",
        [bucket_ms, bucket_ms, *where.params],
    )
    return [Bucket(row["b"], row["s"], row["n"]) for row in rows]


class PlannedStep(msgspec.Struct, frozen=True, kw_only=True):
    """One action the engine planned from an event: its name, its (redacted) parameters and
    its delay in seconds."""

    action: str
    params: dict[str, Any]
    delay_s: int


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine recorded for one event: whether it was processed, the matched rule
    ids, the actions planned in its first remediation, and whether that waited for approval
    (None: no approval guard ran for it, e.g. a joined incident or an earlier guard
    blocked)."""

    processed: bool = False
    rules: list[str] = msgspec.field(default_factory=list)
    actions: list[PlannedStep] = msgspec.field(default_factory=list)
    approval: bool | None = None


def _ms_of(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def event_outcomes(db: Database, event_id: str) -> Recorded:
    """What the engine recorded for one event (:class:`Recorded`), from its
    ``matched``/``no_match``, approval ``guard`` and ``action_planned`` audit records."""
    rows = db.query(
        "SELECT kind, ts, data FROM audit WHERE event_id = ? "
        "AND kind IN ('matched', 'no_match', 'action_planned', 'guard') ORDER BY seq",
        (event_id,),
    )
    processed, rules, actions, approval = False, [], [], None
    for row in rows:
        data: dict[str, Any] = json.loads(row["data"])
        if row["kind"] in ("matched", "no_match"):
            processed = True
            rules = list(data.get("rules") or [])
        elif row["kind"] == "guard":
            if data.get("name") == "approval" and approval is not True:
                approval = data.get("decision") == "wait"
        elif data.get("phase", "remediate") == "remediate" and data.get("attempt", 1) <= 1:
            due = data.get("due")
            delay = max(0, (due - _ms_of(row["ts"])) // 1000) if isinstance(due, int) else 0
            actions.append(PlannedStep(action=str(data.get("action", "")),
                                       params=dict(data.get("params") or {}), delay_s=delay))
    return Recorded(processed=processed, rules=rules, actions=actions, approval=approval)


def incident_event(db: Database, incident: Incident) -> ErrorEvent | None:
    """What failed, as the engine last saw it: the (enriched) event the incident's rule was
    planned from, else (no rule matched) its event from the inbox, enriched if enrichment
    ran; None if neither is stored (retention removed the event). Both are stored
    redacted."""
    if incident.event:
        try:
            return msgspec.json.decode(incident.event, type=ErrorEvent)
        except msgspec.DecodeError:
            pass  # an event written by another version: the inbox still has it
    if not incident.event_id:
        return None
    stored = inbox.get(db, incident.event_id)
    if stored is not None:
        return stored.current
    # One of the runs an alert expanded to ("<id>.<n>"): the inbox keeps the alert as
    # received (and the first run's enrichment), so the alert is what it can say.
    stored = inbox.get(db, incident.event_id.split(".", 1)[0])
    return stored.event if stored is not None else None


def incident_actions(db: Database, incident_ids: list[str]) -> dict[str, list[ActionRow]]:
    """The actions of each incident, in the order they were planned (one indexed query per
    incident: a page lists at most a few hundred)."""
    return {incident_id: for_incident(db, incident_id) for incident_id in incident_ids}


def rca_summaries(db: Database, incident_ids: list[str]) -> dict[str, str]:
    """The summary of each incident's latest root-cause analysis (incidents without one are
    left out)."""
    if not incident_ids:
        return {}
    marks = ", ".join("?" for _ in incident_ids)
    rows = db.query(
        f"SELECT incident_id, data FROM audit WHERE incident_id IN ({marks}) AND kind = 'rca' "
        "ORDER BY seq", incident_ids)
    found: dict[str, str] = {}
    for row in rows:
        analysis = json.loads(row["data"]).get("analysis")
        if isinstance(analysis, dict) and analysis.get("summary"):
            found[row["incident_id"]] = str(analysis["summary"])
    return found
