"""``remediator audit verify`` and ``audit list`` on a real database file and through a running
server (``--url``, ``/api/audit``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import msgspec
from click.testing import CliRunner

from cli import main
from engine.store import audit as audit_store
from engine.store.db import Database
from tests.cli.conftest import Served
from tests.fixtures.dashboard import Seeded
from tests.fixtures.service import ADMIN


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_verify_passes_then_names_the_record_edited_behind_the_engine(seeded: Seeded) -> None:
    db_path = seeded.rig.db.path
    head = audit_store.head(seeded.rig.db)
    assert head is not None
    assert run("audit", "verify", "--db", db_path) == (0, f"ok: {head[0]} records verified\n", "")
    with sqlite3.connect(db_path) as conn:  # another tool: drop the trigger, edit a record
        conn.execute("DROP TRIGGER audit_no_update")
        [bad] = conn.execute("""SELECT min(seq) FROM audit WHERE kind = 'guard'
                                AND data LIKE '%"decision":"wait"%'""").fetchone()
        conn.execute("""UPDATE audit SET data = replace(data, '"decision":"wait"',
                        '"decision":"allow"') WHERE seq = ?""", (bad,))
    code, out, err = run("audit", "verify", "--db", db_path)
    assert (code, out) == (1, "")
    assert err == (f"FAILED: record {bad}: hash does not match its content: it was edited\n"
                   f"{bad - 1} records verified before record {bad}\n")


def test_verify_of_a_missing_file(tmp_path: Path) -> None:
    code, _, err = run("audit", "verify", "--db", str(tmp_path / "none.db"))
    assert code == 2
    assert "does not exist" in err


def test_list_filters(seeded: Seeded) -> None:
    db_path = seeded.rig.db.path

    def kinds(*filters: str) -> list[tuple[str, str]]:
        code, out, _ = run("audit", "list", "--db", db_path, "--json", *filters)
        assert code == 0
        return [(r["kind"], r["incident_id"]) for r in json.loads(out)["records"]]

    assert kinds("--kind", "rca") == [("rca", seeded.unmatched.id)]
    assert kinds("--incident", seeded.dbx.id, "--kind", "action_succeeded") == [
        ("action_succeeded", seeded.dbx.id)]
    assert [k for k, _ in kinds("--resource", "sales_bronze_to_silver")] == [
        "received", "matched", "incident", "guard", "guard", "guard", "guard", "guard", "guard",
        "guard", "action_planned", "action_started", "action_succeeded", "resolution"]
    # the old incident's records are three days old (by the engine's clock)
    recent = kinds("--kind", "incident", "--since", "1d")
    assert sorted(i for _, i in recent) == sorted([seeded.adf.id, seeded.dbx.id,
                                                   seeded.unmatched.id])
    assert len(kinds("--kind", "incident", "--since", "4d")) == 4
    assert len(kinds("--limit", "2")) == 2
    code, out, _ = run("audit", "list", "--db", db_path, "--kind", "rca")
    assert code == 0 and "no RCA engine configured" in out


def test_list_refuses_a_bad_duration(seeded: Seeded) -> None:
    assert run("audit", "list", "--db", seeded.rig.db.path, "--since", "soon") == (
        2, "", "--since: invalid duration 'soon': expected a number and a unit, like 30s, "
               "15m, 2h, 1d or 1h30m\n")


def test_verify_of_a_database_without_audit_records_fails(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    Database(empty).close()
    code, out, err = run("audit", "verify", "--db", str(empty))
    assert (code, out, err) == (
        1, "", f"FAILED: {empty}: the audit log has no record: not Remediator's database, or "
               "a service that never ran\n")
    code, out, _ = run("audit", "verify", "--db", str(empty), "--json")
    assert (code, json.loads(out)) == (1, {
        "ok": False, "checked": 0, "bad_seq": None,
        "reason": f"{empty}: the audit log has no record: not Remediator's database, or a "
                  "service that never ran"})


def test_verify_json_of_a_good_chain(seeded: Seeded) -> None:
    head = audit_store.head(seeded.rig.db)
    assert head is not None
    code, out, _ = run("audit", "verify", "--db", seeded.rig.db.path, "--json")
    assert (code, json.loads(out)) == (
        0, {"ok": True, "checked": head[0], "bad_seq": None, "reason": ""})


def test_verify_and_list_through_the_server(served: Served) -> None:
    db = served.rig.db
    head = audit_store.head(db)
    assert head is not None
    verified = served.cli("audit", "verify")
    assert (verified.exit_code, verified.stdout) == (0, f"ok: {head[0]} records verified\n")
    as_json = served.cli("audit", "verify", "--json")
    assert json.loads(as_json.stdout) == {
        "ok": True, "checked": head[0], "bad_seq": None, "reason": ""}
    [incident] = served.rig.incidents()
    listed = served.cli("audit", "list", "--incident", incident.id, "--json")
    expected = msgspec.to_builtins(audit_store.list_records(db, incident_id=incident.id))
    assert (listed.exit_code, json.loads(listed.stdout)) == (0, {"records": expected})
    kinds = served.cli("audit", "list", "--kind", "guard", "--since", "1000d", "--limit", "2",
                       "--json")
    assert [r["kind"] for r in json.loads(kinds.stdout)["records"]] == ["guard", "guard"]
    table = served.cli("audit", "list", "--kind", "incident")
    assert table.exit_code == 0 and incident.id in table.stdout
    refused = served.cli("audit", "verify", key="not-the-key")
    assert (refused.exit_code, refused.stderr) == (
        1, f"remediator: {served.url} refused the admin key (401): pass --key or set "
           "REMEDIATOR_ADMIN_KEY to one of the server's REMEDIATOR_ADMIN_KEYS\n")


def test_the_audit_api_refuses_unknown_filters_and_bad_limits(served: Served) -> None:
    client = served.rig.client
    assert client.get("/api/audit", params={"seq": "1"}, headers=ADMIN).json()["detail"] == (
        "unknown filter 'seq'; expected incident, event, resource, kind, since, limit, before")
    answer = client.get("/api/audit", params={"limit": "0"}, headers=ADMIN)
    assert answer.status_code == 400
    page = client.get("/api/audit", params={"limit": "3"}, headers=ADMIN).json()
    older = client.get("/api/audit", params={"limit": "3", "before": str(page["next"])},
                       headers=ADMIN).json()
    assert [r["seq"] for r in older["records"]] == [
        page["records"][0]["seq"] - 3 + i for i in range(3)]
