"""``remediator approve|reject|pause|resume|incidents``: through a running server's API (the
app under uvicorn on a free port, the engine driven by hand with a FakeClock) and on the
database directly (``--db``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from cli.admin import age
from engine.events import utcnow
from engine.store import audit as audit_store
from engine.store import state as state_store
from tests.cli.conftest import Served
from tests.e2e.test_remediation import APPROVAL, BLOB, CREATE_RUN
from tests.fixtures.common import load_sample
from tests.fixtures.service import ADMIN_KEY, ServiceRig
from tests.reliability.conftest import free_port


def _waiting(rig: ServiceRig) -> str:
    [incident] = rig.incidents()
    assert incident.state == "waiting_approval"
    return incident.id


def _approvals(rig: ServiceRig, incident_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r.actor, r.data) for r in audit_store.list_records(rig.db, incident_id=incident_id)
            if r.kind == "approval"]


def _db_cli(rig: ServiceRig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--db", rig.db.path])


# -- through the API ---------------------------------------------------------------------


def test_approve_through_the_api_releases_the_action(served: Served) -> None:
    rig = served.rig
    incident_id = _waiting(rig)
    result = served.cli("approve", incident_id)
    assert (result.exit_code, result.stdout) == (
        0, f"{incident_id}: approved by admin\n")
    rig.tick(1)
    assert rig.mutating_calls() == [CREATE_RUN]
    assert _approvals(rig, incident_id) == [
        ("admin", {"decision": "approved", "who": "admin", "actions": 1})]


def test_approve_names_who_through_basic_auth(served: Served) -> None:
    incident_id = _waiting(served.rig)
    result = served.cli("approve", incident_id, "--who", "alice")
    assert (result.exit_code, result.stdout) == (
        0, f"{incident_id}: approved by alice\n")
    assert [actor for actor, _ in _approvals(served.rig, incident_id)] == ["alice"]


def test_a_second_approval_and_an_unknown_incident_are_refused(served: Served) -> None:
    incident_id = _waiting(served.rig)
    assert served.cli("approve", incident_id).exit_code == 0
    again = served.cli("approve", incident_id)
    assert (again.exit_code, again.stderr) == (
        1, f"remediator: incident {incident_id} is remediating, not waiting_approval\n")
    unknown = served.cli("reject", "inc-nope")
    assert (unknown.exit_code, unknown.stderr) == (
        1, "remediator: unknown incident inc-nope\n")


def test_reject_through_the_api_cancels_the_action(served: Served) -> None:
    rig = served.rig
    incident_id = _waiting(rig)
    result = served.cli("reject", incident_id)
    assert (result.exit_code, result.stdout) == (
        0, f"{incident_id}: rejected by admin\n")
    rig.tick(60)
    assert rig.mutating_calls() == []
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == ("ignored", "rejected by admin")


def test_reject_through_the_api_keeps_the_reason(served: Served) -> None:
    rig = served.rig
    incident_id = _waiting(rig)
    result = served.cli("reject", incident_id, "--who", "carol", "--reason", "planned outage")
    assert (result.exit_code, result.stdout) == (0, f"{incident_id}: rejected by carol\n")
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == ("ignored", "rejected by carol: planned outage")
    [(actor, data)] = _approvals(rig, incident_id)
    assert (actor, data["decision"], data["reason"]) == ("carol", "rejected", "planned outage")


def test_pause_and_resume_through_the_api(served: Served) -> None:
    rig = served.rig
    paused = served.cli("pause")
    assert (paused.exit_code, paused.stdout) == (
        0, "paused by admin\n")
    assert state_store.pause_state(rig.db).paused is True
    assert served.cli("approve", _waiting(rig)).exit_code == 0
    rig.tick(1)
    assert rig.mutating_calls() == []  # approved, but paused
    resumed = served.cli("resume", "--who", "bob")
    assert (resumed.exit_code, resumed.stdout) == (
        0, "resumed by bob\n")
    rig.tick(1)
    assert rig.mutating_calls() == [CREATE_RUN]


HEADER = ("ID                          STATE             AGE   SOURCE  RESOURCE               "
          "ERROR                        RULE                ACKED  ASSIGNEE  REASON")


def test_incidents_through_the_api(served: Served) -> None:
    incident_id = _waiting(served.rig)
    [incident] = served.rig.incidents()
    lines = served.cli("incidents")
    opened = age(datetime.fromtimestamp(incident.opened_ms / 1000, UTC).isoformat())
    assert (lines.exit_code, lines.stdout) == (
        0, f"{HEADER}\n"
           f"{incident_id}  waiting_approval  {opened:<4}  adf     pl_ingest_sales_daily  "
           "UserErrorSourceBlobNotExist  blob-with-approval  -      -         "
           "waiting for approval\n")
    as_json = served.cli("incidents", "--json", "--state", "waiting_approval")
    [row] = json.loads(as_json.stdout)
    assert (row["id"], row["state"], row["source"], row["rule_id"], row["error_code"]) == (
        incident_id, "waiting_approval", "adf", "blob-with-approval",
        "UserErrorSourceBlobNotExist")
    assert row["message"].startswith(
        "Failure happened on 'Source' side. ErrorCode=UserErrorSourceBlobNotExist,")
    none = served.cli("incidents", "--state", "resolved")
    assert (none.exit_code, none.stdout, none.stderr) == (0, "", "no incidents\n")


def test_incident_age_is_the_time_since_it_opened() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert [age(at, now) for at in ("2026-12-02T11:59:15Z", "2026-12-02T11:48:00Z",
                                    "2026-12-02T09:00:00Z", "2026-11-29T12:00:00Z", None)] == [
        "45s", "12m", "3h", "3d", "-"]


def test_approve_reject_pause_and_resume_answer_json(served: Served) -> None:
    incident_id = _waiting(served.rig)
    approved = served.cli("approve", incident_id, "--who", "alice", "--json")
    assert (approved.exit_code, json.loads(approved.stdout)) == (
        0, {"id": incident_id, "decision": "approved", "who": "alice"})
    paused = served.cli("pause", "--json")
    assert (paused.exit_code, json.loads(paused.stdout)) == (0, {"paused": True, "who": "admin"})
    resumed = served.cli("resume", "--json", "--who", "bob")
    assert (resumed.exit_code, json.loads(resumed.stdout)) == (
        0, {"paused": False, "who": "bob"})
    refused = served.cli("reject", incident_id, "--json")
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        1, "", f"remediator: incident {incident_id} is remediating, not waiting_approval\n")


def test_the_url_from_the_environment(served: Served) -> None:
    result = CliRunner().invoke(main, ["pause", "--json"], env={
        "REMEDIATOR_URL": served.url, "REMEDIATOR_ADMIN_KEY": ADMIN_KEY})
    assert (result.exit_code, json.loads(result.stdout)) == (0, {"paused": True, "who": "admin"})


def test_the_key_from_the_environment_and_a_wrong_or_missing_key(served: Served) -> None:
    runner = CliRunner()
    from_env = runner.invoke(main, ["pause", "--url", served.url],
                             env={"REMEDIATOR_ADMIN_KEY": ADMIN_KEY})
    assert (from_env.exit_code, from_env.stdout) == (
        0, "paused by admin\n")
    wrong = served.cli("resume", key="not-the-key")
    assert (wrong.exit_code, wrong.stderr) == (
        1, f"remediator: {served.url} refused the admin key (401): pass --key or set "
           "REMEDIATOR_ADMIN_KEY to one of the server's REMEDIATOR_ADMIN_KEYS\n")
    missing = served.cli("resume", key=None)
    assert (missing.exit_code, missing.stderr) == (
        2, "remediator: no admin key: pass --key or set REMEDIATOR_ADMIN_KEY "
           "(or use --db PATH)\n")
    assert state_store.pause_state(served.rig.db).paused is True


def test_an_unreachable_server_is_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["pause", "--url", url, "--key", ADMIN_KEY])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"remediator: cannot reach {url}: ConnectError: ")


# -- on the database ----------------------------------------------------------------------


@pytest.fixture
def stopped(service_rig: Any) -> ServiceRig:
    """A rig with one incident waiting for approval; its server is not running."""
    rig: ServiceRig = service_rig(APPROVAL, live=True)
    rig.post("azure-monitor", load_sample(BLOB))
    rig.run()
    return rig


def test_approve_on_the_database(stopped: ServiceRig) -> None:
    incident_id = _waiting(stopped)
    result = _db_cli(stopped, "approve", incident_id, "--who", "carol")
    assert (result.exit_code, result.stdout) == (
        0, f"{incident_id}: approved by carol\n")
    assert _approvals(stopped, incident_id) == [
        ("carol", {"decision": "approved", "who": "carol", "actions": 1})]
    # The service, started again, runs what was approved (at the approval's time: align the
    # rig's clock with the real one that --db used).
    stopped.tick((utcnow() - stopped.clock.now()).total_seconds() + 1)
    assert stopped.mutating_calls() == [CREATE_RUN]
    again = _db_cli(stopped, "approve", incident_id)
    assert (again.exit_code, again.stderr) == (
        1, f"remediator: incident {incident_id} is verifying, not waiting_approval\n")


def test_reject_on_the_database_keeps_the_reason(stopped: ServiceRig) -> None:
    incident_id = _waiting(stopped)
    result = _db_cli(stopped, "reject", incident_id, "--who", "dave", "--reason", "known outage")
    assert (result.exit_code, result.stdout) == (
        0, f"{incident_id}: rejected by dave\n")
    [incident] = stopped.incidents()
    assert (incident.state, incident.reason) == ("ignored", "rejected by dave: known outage")
    [(actor, data)] = _approvals(stopped, incident_id)
    assert (actor, data["decision"], data["reason"]) == ("dave", "rejected", "known outage")


def test_pause_resume_and_incidents_on_the_database(stopped: ServiceRig) -> None:
    paused = _db_cli(stopped, "pause", "--who", "erin")
    assert (paused.exit_code, paused.stdout) == (
        0, "paused by erin\n")
    state = state_store.pause_state(stopped.db)
    assert (state.paused, state.who) == (True, "erin")
    assert _db_cli(stopped, "resume", "--who", "erin").exit_code == 0
    assert state_store.pause_state(stopped.db).paused is False
    listed = _db_cli(stopped, "incidents", "--resource", "pl_ingest_sales_daily")
    assert listed.exit_code == 0
    header, row = listed.stdout.splitlines()
    assert header == HEADER
    fields = row.split()
    assert fields[1:2] + fields[3:7] == ["waiting_approval", "adf", "pl_ingest_sales_daily",
                                         "UserErrorSourceBlobNotExist", "blob-with-approval"]
    unknown = _db_cli(stopped, "approve", "inc-nope")
    assert (unknown.exit_code, unknown.stderr) == (
        1, "remediator: unknown incident inc-nope\n")


def test_bad_usage_is_exit_2(stopped: ServiceRig) -> None:
    bad_state = _db_cli(stopped, "incidents", "--state", "exploded")
    assert bad_state.exit_code == 2
    assert "Invalid value for '--state': 'exploded' is not one of" in bad_state.output
    no_id = CliRunner().invoke(main, ["approve"])
    assert no_id.exit_code == 2
    assert "Missing argument 'INCIDENT_ID'" in no_id.output
