"""The incident lifecycle on a real database: only the table's moves happen, each as a
compare-and-set, a close always does all of its side effects, and nothing else in the product
writes an incident's state."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta

import pytest

from engine import lifecycle
from engine.errors import InvalidTransition
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import incidents as incidents_store
from engine.store import state as state_store
from engine.store.db import Database
from engine.store.incidents import Incident
from tests.engine.actions.conftest import adf_event
from tests.fixtures.common import ROOT

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
TARGET = "adf:pipeline:adf-contoso-prod/pl_ingest_sales_daily"


def opened(db: Database) -> Incident:
    incident, created = lifecycle.open_or_join(db, adf_event(id="evt_1").with_fingerprint(),
                                               target=TARGET, alert_key="", now=T0)
    assert created and incident.state == "open"
    return incident


def fresh(db: Database, incident: Incident) -> Incident:
    found = incidents_store.get(db, incident.id)
    assert found is not None
    return found


def kinds(db: Database, incident: Incident) -> list[str]:
    return [r.kind for r in audit_store.list_records(db, incident_id=incident.id)]


def test_a_move_the_table_does_not_have_raises_and_changes_nothing(db: Database) -> None:
    incident = opened(db)
    with pytest.raises(InvalidTransition, match=(
            rf"^incident {incident.id}: open -> verifying is not a move of the lifecycle; "
            r"verifying is reached from remediating$")):
        lifecycle.verify(db, incident, attempt=1, now=T0)
    assert lifecycle.remediate(db, incident, reason="actions planned", now=T0)
    with pytest.raises(InvalidTransition, match=(
            rf"^incident {incident.id}: remediating -> waiting_approval is not a move of the "
            r"lifecycle; waiting_approval is reached from open$")):
        lifecycle.wait_approval(db, fresh(db, incident), due=T0, now=T0)
    assert (fresh(db, incident).state, fresh(db, incident).reason) == (
        "remediating", "actions planned")
    assert kinds(db, incident) == ["incident"]


def test_a_move_from_a_state_the_incident_left_does_nothing(db: Database) -> None:
    stale = opened(db)
    assert lifecycle.wait_approval(db, stale, due=T0 + timedelta(hours=1), now=T0)
    assert not lifecycle.remediate(db, stale, reason="actions planned", now=T0)  # seen: open
    assert fresh(db, stale).state == "waiting_approval"
    assert lifecycle.escalate(db, stale, "approval expired", now=T0)  # a close wins
    closed = fresh(db, stale)
    assert (closed.state, closed.closed_ms) == ("escalated", int(T0.timestamp() * 1000))
    for move in (lambda i: lifecycle.resolve(db, i, "verified", now=T0),
                 lambda i: lifecycle.ignore(db, i, "expected", now=T0),
                 lambda i: lifecycle.remediate(db, i, reason="again", now=T0)):
        assert move(closed) is False  # from a final state: closed meanwhile, nothing to do
    assert fresh(db, stale).state == "escalated"
    assert kinds(db, stale) == ["incident", "escalation"]


@pytest.mark.parametrize(("close", "state", "record"), [
    (lifecycle.resolve, "resolved", "resolution"),
    (lifecycle.ignore, "ignored", "resolution"),
    (lifecycle.escalate, "escalated", "escalation"),
])
def test_every_close_cancels_stops_unlocks_and_records(db: Database, close, state: str,
                                                       record: str) -> None:
    incident = opened(db)
    now_ms = int(T0.timestamp() * 1000)
    state_store.acquire_lock(db, TARGET, incident.id, now_ms=now_ms, until_ms=now_ms + 60_000)
    base = dict(incident_id=incident.id, event_id="evt_1", rule_id="r", action="noop",
                phase="remediate", attempt=1, target=TARGET, fingerprint=incident.fingerprint,
                dry_run=False, mutating=False, due_ms=now_ms, params={}, description="d")
    rows = actions_store.plan(db, [
        actions_store.NewAction(idem_key="k1", reference="r/actions[0]", index=0,
                                state="succeeded", **base),
        actions_store.NewAction(idem_key="k2", reference="r/actions[1]", index=1,
                                state="scheduled", **base),
    ], now_ms)
    probed = rows[0][0]
    actions_store.finish(db, probed.id, "succeeded", now_ms=now_ms, result={},
                         probe=(now_ms, now_ms + 60_000, 15.0))
    assert lifecycle.remediate(db, incident, reason="actions planned", now=T0)
    assert close(db, fresh(db, incident), "the reason", now=T0)
    after = fresh(db, incident)
    assert (after.state, after.reason) == (state, "the reason")
    assert [(r.reference, r.state, r.probe_state)
            for r in actions_store.for_incident(db, incident.id)] == [
        ("r/actions[0]", "succeeded", "cancelled"), ("r/actions[1]", "cancelled", "")]
    assert state_store.acquire_lock(db, TARGET, "inc_other", now_ms=now_ms,
                                    until_ms=now_ms + 1).holder == "inc_other"
    assert kinds(db, incident) == ["incident", "action_cancelled", record]
    [closing] = audit_store.list_records(db, incident_id=incident.id, kind=record)
    assert closing.data == ({"reason": "the reason", "resource": "pl_ingest_sales_daily"}
                            if record == "escalation" else
                            {"state": state, "reason": "the reason",
                             "resource": "pl_ingest_sales_daily"})


def test_the_transition_table_is_what_the_moves_allow() -> None:
    assert {
        "open": {"waiting_approval", "remediating", "resolved", "escalated", "ignored"},
        "waiting_approval": {"remediating", "resolved", "escalated", "ignored"},
        "remediating": {"remediating", "verifying", "resolved", "escalated", "ignored"},
        "verifying": {"remediating", "resolved", "escalated", "ignored"},
        "resolved": set(), "escalated": set(), "ignored": set(),
    } == lifecycle.TRANSITIONS
    assert set(lifecycle.STATES) == set(lifecycle.ACTIVE) | set(lifecycle.FINAL)


def test_only_the_lifecycle_writes_an_incident_state() -> None:
    """The store's state writes (engine/store/transitions.py) are imported and called by
    engine/lifecycle.py alone; lint-imports holds the import, this the calls too."""
    users = set()
    for top in ("engine", "receivers", "cli"):
        for path in (ROOT / top).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                named = (isinstance(node, ast.ImportFrom) and (
                    node.module == "engine.store.transitions" or (
                        node.module == "engine.store"
                        and any(a.name == "transitions" for a in node.names))))
                called = (isinstance(node, ast.Attribute)
                          and node.attr in ("set_state", "open_or_join")
                          and ast.unparse(node.value).endswith(("transitions", "incidents_store",
                                                                "incidents")))
                if named or called:
                    users.add(str(path.relative_to(ROOT)))
    assert users == {"engine/lifecycle.py"}


def test_the_architecture_doc_draws_the_code_s_own_states_and_moves() -> None:
    """docs/ARCHITECTURE.md shows the diagram and the table generated from MOVES (if this
    fails: paste ``lifecycle.mermaid()`` and ``lifecycle.moves_table()`` there)."""
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = doc[doc.index("## Incident states"):doc.index("## Import rules")]
    assert f"```mermaid\n{lifecycle.mermaid()}\n```" in section
    assert lifecycle.moves_table() in section
    assert {line.split(" --> ")[0].strip() for line in lifecycle.mermaid().splitlines()[1:]} \
        == {"[*]", *lifecycle.STATES}
