"""A second ``remediator serve`` on the same SQLite file refuses to start (issue 17, item 8):
two services on one file would each take the other's in-flight work for crashed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from engine.store import replicas
from engine.store.db import Database
from tests.e2e.test_serve import _await_health, _free_port, _serve
from tests.fixtures.common import ROOT, remediator_command


def _second(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*remediator_command(), "serve", "--host", "127.0.0.1", "--port", str(_free_port()),
         "--db", str(tmp_path / "e2e.db"), "--playbooks", str(ROOT / "playbooks")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=120, check=False)


def test_second_serve_on_one_file_refuses(tmp_path: Path) -> None:
    with _serve(tmp_path, ROOT / "playbooks") as (_, _, first):
        second = _second(tmp_path)
        assert first.poll() is None  # the first one serves on
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"remediator serve: another `remediator serve` (pid {first.pid}) is running on "
        "e2e.db: one service per SQLite file; run several replicas on PostgreSQL "
        "(--db postgresql://..., docs/DEPLOY.md)")


def test_a_killed_serve_leaves_no_lock(tmp_path: Path) -> None:
    port = _free_port()
    killed = subprocess.Popen(
        [*remediator_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--db", str(tmp_path / "e2e.db"), "--playbooks", str(ROOT / "playbooks")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # serving: the lock is taken before the database is opened
        _await_health(f"http://127.0.0.1:{port}", killed, str)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    # The killed serve's heartbeat may still run for seconds (an hour here, to leave no doubt):
    # holding the file's lock proves it dead, so its calls in flight are taken over at start.
    db = Database(tmp_path / "e2e.db")
    try:
        [killed_owner] = replicas.live(db)
        with db.write() as conn:
            conn.execute("UPDATE replicas SET beat_until_ms = beat_until_ms + 3600000")
    finally:
        db.close()
    with _serve(tmp_path, ROOT / "playbooks") as (_, _, again):
        assert again.poll() is None
        db = Database(tmp_path / "e2e.db")
        try:
            alive = replicas.live(db)
        finally:
            db.close()
        assert killed_owner not in alive and len(alive) == 1
