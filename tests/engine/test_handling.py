"""An operator's hand on an incident, on both backends: acknowledge and assign are
compare-and-sets (a double click writes nothing), notes keep their order, the one re-run is
taken once, and each write is audited with who."""

from __future__ import annotations

from engine.runtime import operators
from engine.store import audit as audit_store
from engine.store import handling as handling_store
from engine.store.db import Database
from tests.engine.test_lifecycle import T0, opened


def test_the_hand_on_an_incident_is_written_once_per_change(db: Database) -> None:
    incident = opened(db)
    assert operators.acknowledge(db, incident.id, "alice", now=T0) is True
    assert operators.acknowledge(db, incident.id, "alice", now=T0) is False
    assert operators.assign(db, incident.id, "bob", "alice", now=T0) is True
    assert operators.assign(db, incident.id, "bob", "alice", now=T0) is False
    first = operators.add_note(db, incident.id, "looking at the source blob", "alice", now=T0)
    second = operators.add_note(db, incident.id, "landed at 03:10", "bob", now=T0)
    assert second.id > first.id
    assert [(n.who, n.text) for n in handling_store.notes(db, incident.id)] == [
        ("alice", "looking at the source blob"), ("bob", "landed at 03:10")]
    assert handling_store.claim_rerun(db, incident.id, "carol", 0) is True
    assert handling_store.claim_rerun(db, incident.id, "dave", 0) is False
    got = handling_store.get(db, incident.id)
    assert (got.acked_by, got.assignee, got.assigned_by, got.rerun_by) == (
        "alice", "bob", "alice", "carol")
    records = audit_store.list_records(db, incident_id=incident.id)
    assert [(r.kind, r.actor) for r in records if r.kind != "incident"][-4:] == [
        ("acknowledged", "alice"), ("assignment", "alice"), ("note", "alice"), ("note", "bob")]
