"""``remediator ack|assign|note|resolve|rerun`` through a running server's API (a named user
logging in with their own password) and on the database of a stopped service (``--db``), and
``remediator hash-password``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from engine.config import HttpSettings, Secret
from engine.store import audit as audit_store
from receivers.passwords import hash_password as make_hash
from receivers.passwords import verify_password
from tests.cli.conftest import Served
from tests.e2e.test_remediation import APPROVAL, BLOB
from tests.fixtures.common import load_sample
from tests.fixtures.service import ServiceRig

PASSWORD = "alice's own password"


@pytest.fixture
def served(service_rig: Any) -> Iterator[Served]:
    """A live rig with one incident waiting for approval and a named user, on a free port."""
    rig = service_rig(APPROVAL, live=True,
                      http=HttpSettings(users={
                          "alice": Secret(make_hash(PASSWORD, cost=(1024, 8, 1)))}))
    rig.post("azure-monitor", load_sample(BLOB))
    rig.run()
    running = Served(rig)
    yield running
    running.stop()


def _hands(rig: ServiceRig, incident_id: str) -> list[tuple[str, str]]:
    return [(r.kind, r.actor) for r in audit_store.list_records(rig.db, incident_id=incident_id)
            if r.actor != "engine"]


def test_the_whole_hand_through_the_api_as_a_named_user(served: Served) -> None:
    rig = served.rig
    [incident] = rig.incidents()
    inc = incident.id

    def alice(*args: str) -> Result:
        return served.cli(*args, "--who", "alice", key=PASSWORD)

    assert alice("ack", inc).stdout == f"{inc}: acknowledged by alice\n"
    assert alice("ack", inc).stdout == (
        f"{inc}: acknowledged by alice (already so: nothing changed)\n")
    assigned = alice("assign", inc, "bob", "--json")
    assert (assigned.exit_code, json.loads(assigned.stdout)) == (
        0, {"id": inc, "assignee": "bob", "who": "alice", "changed": True})
    noted = alice("note", inc, "source team says the blob lands at 06:10")
    assert noted.stdout.startswith(f"{inc}: note ") and noted.stdout.endswith(
        " added by alice\n")
    resolved = alice("resolve", inc, "--note", "copied the blob by hand")
    assert (resolved.exit_code, resolved.stdout) == (0, (
        f"{inc}: resolved (resolved by hand by alice: copied the blob by hand)\n"))
    rerun = alice("rerun", inc, "--json")
    answer = json.loads(rerun.stdout)
    assert (answer["rerun_of"], answer["state"], answer["who"]) == (
        inc, "waiting_approval", "alice")
    again = alice("rerun", inc)
    assert (again.exit_code, again.stderr) == (1, (
        f"remediator: incident {inc} was re-run already by alice as incident "
        f"{answer['incident_id']}: re-run that one\n"))
    assert _hands(rig, inc) == [
        ("acknowledged", "alice"), ("assignment", "alice"), ("note", "alice"),
        ("action_cancelled", "alice"), ("resolution", "alice"), ("rerun", "alice")]
    wrong = served.cli("ack", answer["incident_id"], "--who", "alice", key="not hers")
    assert (wrong.exit_code, wrong.stderr) == (
        1, f"remediator: {served.url} refused the admin key (401): pass --key or set "
        "REMEDIATOR_ADMIN_KEY to one of the server's REMEDIATOR_ADMIN_KEYS\n")


def test_on_the_database_of_a_stopped_service(served: Served) -> None:
    rig = served.rig
    [incident] = rig.incidents()
    inc = incident.id

    def db_cli(*args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--db", rig.db.path, "--who", "carol"])

    assert json.loads(db_cli("ack", inc, "--json").stdout) == {
        "id": inc, "acknowledged_by": "carol", "changed": True}
    assert db_cli("assign", inc, "--nobody").stdout == (
        f"{inc}: assigned to nobody by carol (already so: nothing changed)\n")
    note = json.loads(db_cli("note", inc, "checked the pipeline", "--json").stdout)
    assert (note["who"], note["text"]) == ("carol", "checked the pipeline")
    empty = db_cli("resolve", inc, "--note", " ")
    assert (empty.exit_code, empty.stderr) == (2, "remediator: note: must not be empty\n")
    assert db_cli("resolve", inc, "--note", "fixed upstream").exit_code == 0
    closed = db_cli("ack", inc)
    assert (closed.exit_code, closed.stderr) == (1, (
        f"remediator: incident {inc} is resolved: nothing to acknowledge (add a note "
        "instead)\n"))
    rerun = db_cli("rerun", inc)
    assert (rerun.exit_code, rerun.stderr) == (2, (
        "remediator: rerun needs the running engine (its guards and scheduler): use --url, "
        "not --db\n"))
    assert CliRunner().invoke(main, ["assign", inc, "--db", rig.db.path]).exit_code == 2
    assert [kind for kind, actor in _hands(rig, inc) if actor == "carol"] == [
        "acknowledged", "note", "action_cancelled", "resolution"]


def test_hash_password_makes_a_hash_the_server_takes() -> None:
    made = CliRunner().invoke(main, ["hash-password", "--password-stdin"],
                              input=PASSWORD + "\n")
    assert made.exit_code == 0
    stored = made.stdout.strip()
    assert stored.startswith("scrypt$32768$8$1$") and PASSWORD not in made.output
    assert verify_password(PASSWORD, stored) and not verify_password("another one", stored)
    assert HttpSettings(users={"alice": Secret(stored)}).users == {"alice": Secret(stored)}
    short = CliRunner().invoke(main, ["hash-password", "--password-stdin"], input="short\n")
    assert (short.exit_code, short.stderr) == (
        2, "hash-password: a password of at least 12 characters, please\n")


def test_incidents_show_who_acknowledged_and_the_assignee(served: Served) -> None:
    """``incidents`` (table and --json) says who has the incident in hand, the same through
    the API and on the database."""
    rig = served.rig
    [incident] = rig.incidents()
    inc = incident.id
    nobody = json.loads(served.cli("incidents", "--json").stdout)
    assert [(r["acknowledged_by"], r["acknowledged_at"], r["assignee"]) for r in nobody] == [
        (None, None, None)]
    assert served.cli("ack", inc, "--who", "alice", key=PASSWORD).exit_code == 0
    assert served.cli("assign", inc, "bob", "--who", "alice", key=PASSWORD).exit_code == 0
    [acked] = [r for r in audit_store.list_records(rig.db, incident_id=inc)
               if r.kind == "acknowledged"]
    acked_at = acked.ts.replace(".000Z", "Z")  # the fake clock is on a whole second

    through_api = json.loads(served.cli("incidents", "--json").stdout)
    [row] = through_api
    assert (row["id"], row["acknowledged_by"], row["acknowledged_at"], row["assignee"]) == (
        inc, "alice", acked_at, "bob")
    on_db = CliRunner().invoke(main, ["incidents", "--json", "--db", rig.db.path])
    assert json.loads(on_db.stdout) == through_api

    header, line = served.cli("incidents").stdout.splitlines()
    assert header.split() == ["ID", "STATE", "AGE", "SOURCE", "RESOURCE", "ERROR", "RULE",
                              "ACKED", "ASSIGNEE", "REASON"]
    assert line.split()[7:9] == ["alice", "bob"]
    assert header.index("ACKED") == line.index("alice")
