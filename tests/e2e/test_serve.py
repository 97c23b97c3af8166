"""``remediator serve`` as a real process: start it, deliver a webhook, read the event back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.common import ROOT, load_sample, remediator_command

RECEIVER_KEY = "rk-e2e-9b3f1c"
ADMIN_KEY = "ak-e2e-4d8a07"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _await_health(url: str, process: subprocess.Popen[Any], log: Callable[[], str]) -> None:
    """Wait until ``process`` answers ``url``/health (90 s: serve imports every cloud SDK);
    fail with ``log()`` if it exits first."""
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, log()
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not answer /health in 90 s"
        time.sleep(0.1)


@contextmanager
def _serve(tmp_path: Path, playbooks: Path, extra_env: dict[str, str] | None = None,
           settings: str = "") -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """A running ``remediator serve`` on a free port (``settings``: a TOML settings file's
    text, if any): its URL, log file and process."""
    port = _free_port()
    env = {**os.environ, "REMEDIATOR_API_KEYS": RECEIVER_KEY, "REMEDIATOR_ADMIN_KEYS": ADMIN_KEY,
           "PYTHONPATH": str(ROOT), **(extra_env or {})}
    log_path = tmp_path / "serve.log"
    config: list[str] = []
    if settings:
        (tmp_path / "remediator.toml").write_text(settings)
        config = ["--config", str(tmp_path / "remediator.toml")]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*remediator_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--db", str(tmp_path / "e2e.db"), "--playbooks", str(playbooks), *config],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _await_health(url, process, log_path.read_text)
        yield url, log_path, process
    finally:
        process.terminate()
        try:
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert process.wait(timeout=15) in (0, -signal.SIGTERM), log_path.read_text()
            assert "Application shutdown complete." in log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``remediator serve`` with the shipped playbooks; yields its URL and its log file."""
    with _serve(tmp_path, ROOT / "playbooks") as (url, log_path, _):
        yield url, log_path


def test_serve_takes_a_webhook_and_shows_the_event(server: tuple[str, Path]) -> None:
    url, log_path = server
    payload = load_sample("seed/adf-action-group-alert.json")
    response = httpx.post(f"{url}/azure-monitor", params={"api_key": RECEIVER_KEY}, json=payload)
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["duplicate"] is False

    assert httpx.get(f"{url}/api/events/{receipt['event_id']}",
                     headers={"x-api-key": RECEIVER_KEY}).status_code == 401
    event = httpx.get(f"{url}/api/events/{receipt['event_id']}",
                      headers={"x-api-key": ADMIN_KEY}).json()
    assert (event["source"], event["resource"], event["run_id"], event["error_code"]) == (
        "adf", "Copy_Data_Pipeline", "abc123-def456-789", "UserErrorSourceBlobNotExists"
    )
    assert httpx.get(f"{url}/ready").json() == {"status": "ready"}

    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    intake = [line for line in lines if line.get("event") == "intake"]
    assert [(i["event_id"], i["endpoint"], i["duplicate"]) for i in intake] == [
        (receipt["event_id"], "azure-monitor", False)
    ]
    assert RECEIVER_KEY not in log_path.read_text()
    assert ADMIN_KEY not in log_path.read_text()


def test_serve_refuses_a_bad_setting_with_exit_code_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*remediator_command(), "serve", "--config", str(tmp_path / "missing.toml")],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"remediator serve: {tmp_path / 'missing.toml'}: cannot read: No such file or directory\n"
    )


RULE = """\
name: {name}
rules:
  - id: {name}-rule
    match: {{source: adf, error_code: {code}}}
    actions:
      - action: noop
"""


def _rules(url: str) -> list[str]:
    answer = httpx.get(f"{url}/api/playbooks", headers={"x-api-key": ADMIN_KEY}).json()
    return [rule["id"] for rule in answer["rules"]]


def _wait_for(check: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, f"not within 30 s: {what}"
        time.sleep(0.1)


def test_sighup_reloads_the_playbooks_and_refuses_a_broken_set(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "a.yaml").write_text(RULE.format(name="a", code="CodeA"))
    with _serve(tmp_path, playbooks) as (url, log_path, process):
        assert _rules(url) == ["a-rule"]

        (playbooks / "b.yaml").write_text(RULE.format(name="b", code="CodeB"))
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: _rules(url) == ["a-rule", "b-rule"], "the new rule after SIGHUP")

        (playbooks / "c.yaml").write_text(RULE.format(name="c", code="CodeC") + "  - id: [\n")
        process.send_signal(signal.SIGHUP)
        _wait_for(lambda: "playbooks_problem" in log_path.read_text(), "the refusal logged")
        assert _rules(url) == ["a-rule", "b-rule"]  # the set in force stays, whole
        problems = [json.loads(line)["problem"] for line in log_path.read_text().splitlines()
                    if '"playbooks_problem"' in line]
        assert problems and all(p.startswith(str(playbooks / "c.yaml") + ":") for p in problems)
