"""Storage faults: the database locked by another process and the disk full. The receivers
answer 503 with Retry-After (Azure Monitor retries 503), nothing is half-written, the audit
chain verifies, and intake recovers without a restart once the fault clears.

The full disk is a real 2 MiB tmpfs when this process may mount one (root, as on the
developers' machines and CI); elsewhere SQLite's ``max_page_count`` pragma on the service's
own connection emulates it. ``test_disk_full_...`` names which one ran in its first assert.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from engine.config import Secret, Settings
from engine.store import inbox
from engine.store.audit import verify_chain
from engine.store.db import Database
from receivers.app import create_app
from tests.engine.actions.conftest import adf_event
from tests.engine.test_worker import RERUN
from tests.fixtures.app import RECEIVER_KEY
from tests.fixtures.engine import EngineRig
from tests.reliability.conftest import poll

HEADERS = {"x-api-key": RECEIVER_KEY}


def _payload(n: int, pad: int = 0) -> dict[str, Any]:
    """A distinct firing alert; ``pad`` bytes of description make it bigger."""
    from scripts._harness import adf_failure

    payload = adf_failure(f"s{n:05d}")
    payload["data"]["essentials"]["description"] = "x" * pad
    return payload


def _events_complete(db: Database) -> None:
    """No event without its data: every stored row has its event and its raw payload."""
    rows = db.query("SELECT id, event, raw FROM events")
    assert [r["id"] for r in rows if not r["event"] or r["raw"] is None] == []


def test_a_locked_database_answers_503_then_recovers_without_restart(
    tmp_path: Path, db: Database
) -> None:
    settings = Settings(db=db.path, api_keys=(Secret(RECEIVER_KEY),))
    with TestClient(create_app(settings, db)) as client:
        assert client.post("/azure-monitor", json=_payload(0), headers=HEADERS).status_code == 202
        other = sqlite3.connect(db.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            refused = client.post("/azure-monitor", json=_payload(1), headers=HEADERS)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json() == {"error": "storage_unavailable",
                                      "detail": "the event could not be stored; retry later"}
            assert client.get("/health").json() == {"status": "ok"}
        finally:
            other.execute("ROLLBACK")
            other.close()
        # The sender's retry, with no restart in between.
        again = client.post("/azure-monitor", json=_payload(1), headers=HEADERS)
        assert (again.status_code, again.json()["duplicate"]) == (202, False)
    assert len(db.query("SELECT id FROM events")) == 2
    _events_complete(db)
    assert verify_chain(db).ok


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory on a 2 MiB file system ("tmpfs"), or a plain one ("max_page_count")."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        yield mount, "max_page_count"
        return
    try:
        yield mount, "tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_answers_503_writes_nothing_half_and_recovers(
    small_disk: tuple[Path, str]
) -> None:
    folder, how = small_disk
    assert how in ("tmpfs", "max_page_count")  # which emulation ran (see the module doc)
    db = Database(folder / "remediator.db")
    filler = folder / "filler"
    try:
        if how == "tmpfs":
            # Leave about 300 KiB: a few big events fit, then the file system is full.
            free = _free_bytes(folder)
            filler.write_bytes(b"\0" * max(0, free - 300 * 1024))
        else:
            pages = db.query("PRAGMA page_count")[0][0]
            db.utils.execute(f"PRAGMA max_page_count = {pages + 60}")
        settings = Settings(db=db.path, api_keys=(Secret(RECEIVER_KEY),),
                            body_limit=256 * 1024)
        with TestClient(create_app(settings, db)) as client:
            statuses = []
            for n in range(60):
                response = client.post("/azure-monitor", json=_payload(n, pad=40_000),
                                       headers=HEADERS)
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert response.headers["retry-after"] == "5"
                    break
            assert statuses[0] == 202 and statuses[-1] == 503, statuses
            stored = len(db.query("SELECT id FROM events"))
            assert stored == statuses.count(202)
            _events_complete(db)
            assert verify_chain(db).ok
            assert client.get("/health").status_code == 200

            # The fault clears (space freed): the same process takes the retry.
            if how == "tmpfs":
                filler.unlink()
            else:
                db.utils.execute("PRAGMA max_page_count = 1073741823")
            retry = client.post("/azure-monitor", json=_payload(len(statuses) - 1, pad=40_000),
                                headers=HEADERS)
            assert (retry.status_code, retry.json()["duplicate"]) == (202, False)
            assert len(db.query("SELECT id FROM events")) == stored + 1
            _events_complete(db)
            assert verify_chain(db).ok
    finally:
        db.close()


def _free_bytes(folder: Path) -> int:
    import os

    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def test_the_worker_keeps_polling_after_the_database_was_locked(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    worker._poll_s = 0.05
    worker.start()
    other = sqlite3.connect(engine_rig.db.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        # While locked, the worker's next claim waits out busy_timeout (5 s) and fails; hold
        # the lock past that (6.5 s): the polling thread must survive it.
        thread = worker._thread
        assert thread is not None
        thread.join(timeout=6.5)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert thread.is_alive()
    event_id = engine_rig.deliver(adf_event())
    poll(lambda: inbox.get(engine_rig.db, event_id).state == "done", bound_s=10)
