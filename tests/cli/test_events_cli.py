"""``remediator events list|replay``: parked events through a running server's API (the app
under uvicorn on a free port) and on the database of a stopped one (``--db``). The event is
parked by the real worker: its rule's template fails for it, an error a retry would repeat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from engine.store import audit as audit_store
from engine.store import inbox
from tests.cli.conftest import Served
from tests.e2e.test_remediation import BLOB
from tests.fixtures.common import load_sample
from tests.fixtures.service import ServiceRig

BROKEN = """
name: t
rules:
  - id: blob-broken-template
    match: {source: adf}
    actions:
      - action: noop
        with: {note: "{{ event.attributes.no_such_field }}"}
"""
REASON = ("its stages failed with an error that a retry would repeat: rules.yaml:"
          "blob-broken-template/actions[0]: with.note: 'dict object' has no attribute "
          "'no_such_field'")


def _park(rig: ServiceRig) -> str:
    event_id = str(rig.post("azure-monitor", load_sample(BLOB))["event_id"])
    assert rig.run() == 1
    stored = inbox.get(rig.db, event_id)
    assert stored is not None and (stored.state, stored.reason) == ("parked", REASON)
    return event_id


@pytest.fixture
def served(service_rig: Any) -> Iterator[tuple[Served, str]]:
    """A rig with one parked event, served on a free port; yields it and the event id."""
    rig = service_rig(BROKEN)
    event_id = _park(rig)
    running = Served(rig)
    yield running, event_id
    running.stop()


def _state(rig: ServiceRig, event_id: str) -> tuple[str, int, str]:
    stored = inbox.get(rig.db, event_id)
    assert stored is not None
    return stored.state, stored.attempts, stored.reason


def _replays(rig: ServiceRig, event_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r.actor, r.data) for r in audit_store.list_records(
        rig.db, event_id=event_id, kind="replayed", limit=100)]


def _db_cli(rig: ServiceRig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--db", rig.db.path])


def test_list_and_replay_through_the_api(served: tuple[Served, str]) -> None:
    server, event_id = served
    listed = server.cli("events", "list", "--state", "parked")
    assert (listed.exit_code, listed.stdout) == (
        0, f"{event_id}  parked  1  pl_ingest_sales_daily  {REASON}\n")

    result = server.cli("events", "replay", event_id, "--who", "alice", "--reason", "fixed")
    assert (result.exit_code, result.stdout) == (
        0, f"{event_id}: replayed by alice, pending again\n")
    assert _state(server.rig, event_id) == ("pending", 0, "replayed by alice: fixed")
    assert _replays(server.rig, event_id) == [
        ("alice", {"who": "alice", "reason": "fixed", "resource": "pl_ingest_sales_daily"})]

    again = server.cli("events", "replay", event_id)
    assert (again.exit_code, again.stderr) == (
        1, f"remediator: event {event_id} is pending, not parked: only a parked event can be "
           "replayed\n")
    unknown = server.cli("events", "replay", "evt_nope")
    assert (unknown.exit_code, unknown.stderr) == (1, "remediator: unknown event evt_nope\n")
    none = server.cli("events", "list", "--state", "parked")
    assert (none.exit_code, none.stdout, none.stderr) == (0, "", "no events\n")


def test_a_wrong_key_replays_nothing(served: tuple[Served, str]) -> None:
    server, event_id = served
    wrong = server.cli("events", "replay", event_id, key="not-the-key")
    assert (wrong.exit_code, wrong.stderr) == (
        1, f"remediator: {server.url} refused the admin key (401): pass --key or set "
           "REMEDIATOR_ADMIN_KEY to one of the server's REMEDIATOR_ADMIN_KEYS\n")
    assert _state(server.rig, event_id)[0] == "parked"
    assert _replays(server.rig, event_id) == []


def test_replay_answers_json(served: tuple[Served, str]) -> None:
    server, event_id = served
    result = server.cli("events", "replay", event_id, "--who", "bob", "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (
        0, {"id": event_id, "state": "pending", "who": "bob"})


def test_list_as_json_through_the_api(served: tuple[Served, str]) -> None:
    server, event_id = served
    result = server.cli("events", "list", "--json", "--state", "parked")
    [row] = json.loads(result.stdout)
    assert {k: row[k] for k in ("id", "state", "claims", "source", "resource", "reason")} == {
        "id": event_id, "state": "parked", "claims": 1, "source": "adf",
        "resource": "pl_ingest_sales_daily", "reason": REASON}


def test_list_and_replay_on_the_database_of_a_stopped_service(service_rig: Any) -> None:
    rig = service_rig(BROKEN)
    event_id = _park(rig)
    rig.service.stop()
    listed = _db_cli(rig, "events", "list", "--state", "parked", "--json")
    assert listed.exit_code == 0
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["state"], row["claims"], row["reason"]) == (
        event_id, "parked", 1, REASON)

    result = _db_cli(rig, "events", "replay", event_id, "--who", "bob")
    assert (result.exit_code, result.stdout) == (
        0, f"{event_id}: replayed by bob, pending again\n")
    assert _state(rig, event_id) == ("pending", 0, "replayed by bob")
    assert _replays(rig, event_id) == [
        ("bob", {"who": "bob", "reason": "", "resource": "pl_ingest_sales_daily"})]
    again = _db_cli(rig, "events", "replay", event_id)
    assert (again.exit_code, again.stderr) == (
        1, f"remediator: event {event_id} is pending, not parked: only a parked event can be "
           "replayed\n")
