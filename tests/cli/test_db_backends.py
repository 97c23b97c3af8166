"""``--db`` and ``REMEDIATOR_DB`` name a SQLite file or a PostgreSQL URL on every command that
opens the database; ``remediator migrate`` applies PostgreSQL's numbered SQL files once."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import psycopg
from click.testing import CliRunner

from cli import main
from engine.events import utcnow
from engine.store import audit as audit_store
from engine.store.db import Database
from engine.store.migrate import available
from tests.fixtures.postgres import PgServer


def _applied(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version")]


def test_migrate_applies_each_file_once(pg_server: PgServer) -> None:
    url = pg_server.empty()
    names = [f"{m.version:04d}_{m.name}" for m in available()]
    first = CliRunner().invoke(main, ["migrate", "--db", url])
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        *(f"applied {name}" for name in names),
        f"ok: {url} is current ({len(names)} applied)"]
    again = CliRunner().invoke(main, ["migrate", "--db", url])
    assert again.output.splitlines() == [f"ok: {url} is current (0 applied)"]
    assert _applied(url) == [(m.version, m.name) for m in available()]


def test_replicas_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.empty()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Database(url).close()  # each replica applies what is missing
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _applied(url) == [(m.version, m.name) for m in available()]


def test_audit_verify_reads_postgres_from_the_option_and_the_environment(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        for n in range(3):
            audit_store.append(db, "guard", ts=utcnow(), data={"n": n})
        audit_store.link(db)  # as the leader's chainer does
    finally:
        db.close()
    by_option = CliRunner().invoke(main, ["audit", "verify", "--db", pg_url])
    assert (by_option.exit_code, by_option.output) == (0, "ok: 3 records verified\n")
    by_env = CliRunner().invoke(main, ["audit", "verify"], env={"REMEDIATOR_DB": pg_url})
    assert (by_env.exit_code, by_env.output) == (0, "ok: 3 records verified\n")


def test_an_unreachable_server_is_named_without_its_password(pg_server: PgServer) -> None:
    url = f"postgresql://remediator:hunter2-secret@127.0.0.1:{pg_server.port + 1}/x"
    result = CliRunner().invoke(main, ["audit", "verify", "--db", url])
    shown = f"postgresql://remediator:***@127.0.0.1:{pg_server.port + 1}/x"
    assert result.exit_code == 1  # as any database the admin commands cannot open
    assert result.output.startswith(f"remediator: {shown}: cannot open database {shown}: ")
    assert "hunter2" not in result.output


def test_a_missing_sqlite_file_is_still_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["audit", "verify", "--db", str(tmp_path / "no.db")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_audit_verify_says_what_waits_to_be_linked(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        audit_store.append(db, "guard", ts=utcnow(), data={"n": 1})
        audit_store.link(db)  # the leader linked the first; the second waits
        audit_store.append(db, "guard", ts=utcnow(), data={"n": 2})
        shown = CliRunner().invoke(main, ["audit", "verify", "--db", pg_url])
        assert shown.exit_code == 0
        assert re.fullmatch(r"ok: 1 records verified; 1 more not linked yet \(the oldest "
                            r"written \d+\.\d s ago\)\n", shown.output)
        as_json = json.loads(CliRunner().invoke(
            main, ["audit", "verify", "--json", "--db", pg_url]).output)
        assert set(as_json) == {"ok", "checked", "bad_seq", "reason", "pending",
                                "pending_age_s"}
        assert (as_json["ok"], as_json["checked"], as_json["pending"]) == (True, 1, 1)
        audit_store.link(db)
    finally:
        db.close()
    linked = CliRunner().invoke(main, ["audit", "verify", "--db", pg_url])
    assert (linked.exit_code, linked.output) == (0, "ok: 2 records verified\n")
