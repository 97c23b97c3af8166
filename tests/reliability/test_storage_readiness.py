"""Readiness and bounded intake under storage faults: ``/ready`` answers 200 only if a webhook
could be stored now, and a webhook whose commit does not complete within
``[intake] commit_timeout_s`` gets 503 with Retry-After instead of hanging.

The faults are real. A read-only database: an ext4 file system on a loop device mounted with
``errors=remount-ro``, then an error triggered through ext4's own ``trigger_fs_error`` (the
kernel turns the mount read-only under the open database, as on a disk error) when this
process may mount one (root); elsewhere ``PRAGMA query_only`` on the service's connection
gives the same "cannot write" answer. ``test_read_only_...`` names which one ran in its
first assert. A storage freeze: another connection holds ``BEGIN EXCLUSIVE`` while the
service's connection waits it out (its busy timeout raised), as the service waited out a 40 s
freeze in issue 14 (webhooks hung 42 s with no 503).
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from engine.config import IntakeSettings, Secret, Settings
from engine.store import heartbeat as heartbeat_store
from engine.store.db import Database
from receivers.app import create_app
from receivers.group_commit import GroupCommitter
from tests.fixtures.app import RECEIVER_KEY
from tests.fixtures.common import Commits
from tests.reliability.conftest import poll
from tests.reliability.test_storage_faults import HEADERS, _payload

UNAVAILABLE = {"status": "unavailable"}
NOT_STORED = {"error": "storage_unavailable",
              "detail": "the event could not be stored; retry later"}


def _settings(db: Database, **intake: float) -> Settings:
    return Settings(db=db.path, api_keys=(Secret(RECEIVER_KEY),),
                    intake=IntakeSettings(**intake))


def _stored(db: Database) -> list[tuple[str, str]]:
    rows = db.query("SELECT id, dedup_key FROM events ORDER BY id")
    return [(r["id"], r["dedup_key"]) for r in rows]


@pytest.fixture
def read_only_storage(tmp_path: Path) -> Iterator[tuple[Path, Callable[[Database], None], str]]:
    """A folder, a function that makes the database in it read-only, and how it does so."""
    mount = tmp_path / "ext4"
    mount.mkdir()
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True,
                          check=False)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop,errors=remount-ro", str(image), str(mount)],
        capture_output=True, check=False).returncode == 0
    if mounted:
        device = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mount)],
                                capture_output=True, text=True, check=True).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
        if trigger.exists():
            try:
                yield mount, lambda _db: trigger.write_text("remediator test\n"), "ext4 remount-ro"
            finally:
                subprocess.run(["umount", "-l", str(mount)], check=True)
            return
        subprocess.run(["umount", "-l", str(mount)], check=True)

    def query_only(db: Database) -> None:
        db.utils.execute("PRAGMA query_only = ON")

    yield tmp_path, query_only, "query_only"


def test_read_only_storage_answers_503_on_ready_and_on_webhooks(
    read_only_storage: tuple[Path, Callable[[Database], None], str],
) -> None:
    folder, make_read_only, how = read_only_storage
    assert how in ("ext4 remount-ro", "query_only")  # which fault ran (see the module doc)
    db = Database(folder / "remediator.db")
    try:
        # ready_probe_s=0: every /ready writes its heartbeat (no cached answer to wait out).
        with TestClient(create_app(_settings(db, ready_probe_s=0), db)) as client:
            assert client.get("/ready").json() == {"status": "ready"}
            first = client.post("/azure-monitor", json=_payload(0), headers=HEADERS)
            assert first.status_code == 202

            make_read_only(db)
            ready = client.get("/ready")
            assert (ready.status_code, ready.json()) == (503, UNAVAILABLE)
            assert ready.headers["retry-after"] == "5"
            refused = client.post("/azure-monitor", json=_payload(1), headers=HEADERS)
            assert (refused.status_code, refused.json()) == (503, NOT_STORED)
            assert refused.headers["retry-after"] == "5"
            # Still not ready (the write fails again), still alive, and reads still work.
            assert client.get("/ready").status_code == 503
            assert client.get("/health").json() == {"status": "ok"}
            assert [event_id for event_id, _ in _stored(db)] == [first.json()["event_id"]]
    finally:
        db.close()


def test_a_storage_freeze_answers_503_within_the_bound_and_the_late_commit_is_kept(
    db: Database,
) -> None:
    settings = _settings(db, commit_timeout_s=1.0, ready_probe_s=0)
    with TestClient(create_app(settings, db)) as client:
        assert client.post("/azure-monitor", json=_payload(0), headers=HEADERS).status_code == 202
        # The service waits the freeze out (as it did in issue 14) instead of failing after
        # its usual 5 s busy timeout: only the commit bound can answer in time.
        db.utils.execute("PRAGMA busy_timeout = 120000")
        alert = _payload(1)  # the one the sender posts, then resends
        other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")
        lock = threading.Lock()
        frozen = [True]

        def thaw() -> None:
            with lock:
                if frozen[0]:
                    other.execute("ROLLBACK")
                    frozen[0] = False

        # Without the bound the webhook below would hang until this ends the freeze (30 s);
        # it would then be answered 202 and the assertions on 503 fail.
        backstop = threading.Timer(30, thaw)
        backstop.start()
        try:
            ready_idle = client.get("/ready")  # no webhook in flight: the heartbeat waits
            during = client.post("/azure-monitor", json=alert, headers=HEADERS)
            ready_busy = client.get("/ready")  # a commit stuck for longer than the bound
            answered_in_freeze = frozen[0]
        finally:
            backstop.cancel()
            thaw()
            other.close()
        assert answered_in_freeze
        assert (ready_idle.status_code, ready_idle.json()) == (503, UNAVAILABLE)
        assert (during.status_code, during.json()) == (503, NOT_STORED)
        assert during.headers["retry-after"] == "5"
        assert (ready_busy.status_code, ready_busy.json()) == (503, UNAVAILABLE)

        # The freeze is over: the queued commit completes, so the event is stored (not lost),
        # and the sender's retry is a duplicate answered with that first id.
        [(late_id, key)] = poll(lambda: [row for row in _stored(db)[1:]],
                                what="the late commit")
        retry = client.post("/azure-monitor", json=alert, headers=HEADERS)
        assert retry.status_code == 202
        assert retry.json() == {"event_id": late_id, "duplicate": True, "status": "firing"}
        assert client.get("/ready").json() == {"status": "ready"}
    assert [k for _, k in _stored(db)].count(key) == 1


class _Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ready_polling_writes_at_most_one_heartbeat_per_probe_interval(db: Database) -> None:
    commits = Commits(db)
    clock = _Clock()
    committer = GroupCommitter(db, intake=IntakeSettings(ready_probe_s=5.0), clock=clock)
    committer.start()

    async def scenario() -> list[tuple[list[bool], int]]:
        seen = []
        # Never written: the first call writes the heartbeat; the next nine reuse it.
        seen.append(([await committer.ready() for _ in range(10)], commits.count))
        clock.now += 4.9
        seen.append(([await committer.ready() for _ in range(10)], commits.count))
        clock.now += 0.2  # 5.1 s since the heartbeat: one more
        seen.append(([await committer.ready() for _ in range(10)], commits.count))
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        committer.close()
    assert seen == [([True] * 10, 1), ([True] * 10, 1), ([True] * 10, 2)]
    [row] = db.query("SELECT value FROM state WHERE key = ?", (heartbeat_store.KEY,))
    assert int(row["value"]) > 0


def test_a_committed_webhook_counts_as_the_probe(db: Database) -> None:
    from tests.receivers.test_group_commit import _event

    commits = Commits(db)
    committer = GroupCommitter(db, intake=IntakeSettings(ready_probe_s=5.0), clock=_Clock())
    committer.start()

    async def scenario() -> tuple[Any, ...]:
        await committer.commit("x", [_event("k-ready")], {"n": 1})
        after_webhook = commits.count
        answers = [await committer.ready() for _ in range(5)]
        return after_webhook, answers, commits.count

    try:
        after_webhook, answers, total = asyncio.run(scenario())
    finally:
        committer.close()
    assert (answers, total - after_webhook) == ([True] * 5, 0)
    assert db.query("SELECT value FROM state WHERE key = ?", (heartbeat_store.KEY,)) == []
