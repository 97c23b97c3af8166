"""``remediator sandbox`` and ``remediator demo`` own a child process (``python -m sandbox``):
a signal to the parent, even kill -9, must not leave it running, and when the child fails its
log is kept and its last lines are shown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.fixtures.common import remediator_command
from tests.reliability.conftest import poll


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def _started(args: list[str], cwd: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """The command running, and the pid of its ``python -m sandbox`` child once it is up."""
    process = subprocess.Popen([*remediator_command(), *args], cwd=cwd, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def sandbox_child() -> int | None:
            assert process.poll() is None, process.communicate()
            for child in _children(process.pid):
                if "sandbox" in Path(f"/proc/{child}/cmdline").read_text():
                    return child
            return None

        child = poll(sandbox_child, bound_s=120, what="the sandbox child started")
        yield process, child
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "Ctrl-C", "kill -9"])
def test_a_signal_to_remediator_sandbox_stops_its_child(tmp_path: Path, signum: int) -> None:
    config = tmp_path / "sandbox.toml"
    with _started(["sandbox", "--config-out", str(config)], tmp_path) as (process, child):
        poll(config.exists, bound_s=120, what="the settings written")
        os.kill(process.pid, signum)
        process.wait(timeout=30)
        poll(lambda: not _alive(child), bound_s=30, what="the child gone")
        if signum != signal.SIGKILL:
            assert process.returncode == 0


def test_sigterm_to_remediator_demo_stops_its_child(tmp_path: Path) -> None:
    with _started(["demo", "--once", "--db", str(tmp_path / "d.db")], tmp_path) as (
            process, child):
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        poll(lambda: not _alive(child), bound_s=30, what="the child gone")
        assert process.returncode != 0  # stopped before its steps were done


@pytest.mark.parametrize("command", [["sandbox"], ["demo", "--once"]])
def test_a_failing_child_keeps_its_log_and_shows_its_end(tmp_path: Path,
                                                         command: list[str]) -> None:
    # `python -m sandbox` finds the package in its working directory first: a broken one there
    # makes the real child fail the way a missing dependency does.
    broken = tmp_path / "sandbox"
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "__main__.py").write_text(
        "import sys\nprint('starting the emulators')\n"
        "sys.exit('ModuleNotFoundError: No module named planted_missing_module')\n")
    done = subprocess.run([*remediator_command(), *command], cwd=tmp_path, text=True,
                          capture_output=True, timeout=180)
    assert done.returncode == 1
    assert "the sandbox exited with 1; its log is kept at " in done.stderr
    assert "  | starting the emulators\n" in done.stderr
    assert "  | ModuleNotFoundError: No module named planted_missing_module" in done.stderr
    kept = Path(re.search(r"its log is kept at (\S+);", done.stderr)[1])
    try:
        assert "planted_missing_module" in kept.read_text()
    finally:
        kept.unlink()
