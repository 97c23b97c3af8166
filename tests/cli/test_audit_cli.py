"""``remediator audit verify`` and ``audit list`` on a real database file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from cli import main
from engine.store import audit as audit_store
from tests.fixtures.dashboard import Seeded


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
