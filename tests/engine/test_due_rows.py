"""``actions.due(..., incident_id=...)``: the worker runs its own incident's due rows at once,
however many rows of other incidents are due before them (the scheduler's backlog)."""

from __future__ import annotations

from engine.store import actions as actions_store
from engine.store.db import Database


def _row(n: int, incident_id: str, due_ms: int) -> actions_store.NewAction:
    return actions_store.NewAction(
        idem_key=f"k{n}", incident_id=incident_id, event_id=f"evt_{n}", rule_id="r",
        reference=f"p.yaml:r/actions[{n}]", action="noop", index=0, phase="remediate",
        attempt=1, target=f"adf:pipeline:f/p{n}", fingerprint="fp", state="scheduled",
        dry_run=False, mutating=False, due_ms=due_ms, params={}, description="noop",
    )


def test_an_incidents_due_row_is_found_behind_a_backlog_of_others(db: Database) -> None:
    backlog = [_row(n, "inc_old", due_ms=1_000 + n) for n in range(60)]
    actions_store.plan(db, [*backlog, _row(99, "inc_new", due_ms=5_000)], now_ms=1_000)
    assert "inc_new" not in {r.incident_id for r in actions_store.due(db, 10_000)}
    [mine] = actions_store.due(db, 10_000, incident_id="inc_new")
    assert (mine.idem_key, mine.incident_id) == ("k99", "inc_new")
    assert actions_store.due(db, 4_999, incident_id="inc_new") == []
    assert len(actions_store.due(db, 10_000, limit=1000)) == 61
