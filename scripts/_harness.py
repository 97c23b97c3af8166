"""What the reliability scripts and tests share: the sandbox, a settings file pointing
``remediator serve --live`` at it, the real process (started, probed, killed), and ADF failure
payloads that each name their own pipeline and run (so that every failure is one target).

Everything runs on 127.0.0.1 and every loop is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = (ROOT / "tests/testdata/samples/azure-monitor"
          / "azmon-common-logv2-adf-activityrun-blobmissing.json")
RECEIVER_KEY = "rk-harness-6f2e9a"
ADMIN_KEY = "ak-harness-1c7d3b"
DBX_TOKEN = "dapi00112233445566778899aabbccddeeff"
AZ_SECRET = "harness-client-secret-Zq8"


def rerun_playbook(name: str, verify_interval: str) -> str:
    """A playbook whose one rule reruns a failed ADF copy from the failed activity."""
    return f"""\
name: {name}
rules:
  - id: adf-copy-failed
    match: {{source: adf, error_code: ["2200", UserErrorSourceBlobNotExist]}}
    actions:
      - action: adf.rerun_pipeline
        with: {{start_from_failure: true}}
    verify: {{timeout: 30m, interval: {verify_interval}}}
    budget: {{max_attempts: 3, window: 24h}}
"""


RERUN_PLAYBOOK = rerun_playbook("harness", "1s") + """\
    on_failure:
      - action: noop
        with: {note: "still failing after {{ attempts }} attempts"}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_toml(sandbox: Any, *, db: Path | str, playbooks: Path, port: int,
                  lease_s: int = 2, max_claims: int = 5, extra: str = "") -> str:
    """A settings file for ``serve --live`` against ``sandbox`` (short leases: a killed
    process's work comes back within seconds)."""
    return f"""
host = "127.0.0.1"
port = {port}
db = "{db}"
playbooks = "{playbooks}"
live = true
api_keys = ["{RECEIVER_KEY}"]
admin_keys = ["{ADMIN_KEY}"]

[engine]
event_lease_s = {lease_s}
max_claims = {max_claims}
action_lease_s = {lease_s}
retry_backoff_s = 1
retry_backoff_max_s = 2

[pollers]
enabled = false

[clouds]
http_timeout = 5.0

[clouds.adf.prod]
subscription_id = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
resource_group = "rg-dataplatform-prod"
factories = ["adf-contoso-prod"]
base_url = "{sandbox.adf_url}"
ca_file = "{sandbox.ca_file}"
timeout = 5.0
retries = 0

[clouds.adf.prod.credential]
type = "client_secret"
tenant_id = "72f988bf-0000-4a1b-9c3d-2e4f6a8b0c1d"
client_id = "remediator"
client_secret = "{AZ_SECRET}"
authority = "{sandbox.adf_url}"
disable_instance_discovery = true

[clouds.databricks.ws]
host = "{sandbox.databricks_url}"
workspace_id = "1234567890123456"
token = "{DBX_TOKEN}"
timeout = 5.0
retry_timeout = 1.0
{extra}
"""


def adf_failure(tag: str, *, pipeline: str | None = None,
                sandbox: Any = None) -> dict[str, Any]:
    """The Log Alerts V2 ADF sample as a new alert, fired now, about its own pipeline
    (``pl_<tag>``) and run, unless ``pipeline`` is given (then only the alert and the run are
    new). With ``sandbox``, the emulator gets that run as a failed run of that pipeline (the
    engine checks a run's pipeline before it reruns it, and ignores alerts a day old)."""
    name, run_id = pipeline or f"pl_{tag}", str(uuid.uuid4())
    text = SAMPLE.read_text()
    text = text.replace("pl_ingest_sales_daily", name)
    text = text.replace("7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11", run_id)
    text = text.replace("9d3a6f10-2b7c-4e58-a1d4-6c8e0f2b5a77", str(uuid.uuid4()))
    if sandbox is not None:
        sandbox.failure("adf", "given-run", run_id=run_id, pipeline=name)
    payload = json.loads(text)
    fired = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload["data"]["essentials"]["firedDateTime"] = fired
    return dict(payload)


def rerun_calls(sandbox: Any) -> list[dict[str, Any]]:
    """Every createRun the ADF emulator answered (the cloud's own record of remediations)."""
    return [c for c in sandbox.calls("adf") if c["path"].endswith("/createRun")]


def pipeline_of(call: dict[str, Any]) -> str:
    return call["path"].rsplit("/pipelines/", 1)[1].split("/", 1)[0]


ZYGOTE = """
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
import uvicorn  # noqa: F401  (the imports that make a cold start slow, done once)
from cli import main
from receivers.app import create_app  # noqa: F401
for line in sys.stdin:
    config, log = line.rstrip("\\n").split("\\t")
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            main(["serve", "--config", config], prog_name="remediator")
        except SystemExit as exc:
            os._exit(exc.code if isinstance(exc.code, int) else 1)
        os._exit(0)
    sys.stdout.write(f"{pid}\\n")
    sys.stdout.flush()
"""


class Zygote:
    """A process that has imported the service once and forks a fresh ``remediator serve``
    per start: the same command and code path, without paying the cold import (tens of
    seconds on a loaded machine) at every restart of a crash loop."""

    def __init__(self) -> None:
        env = _clean_env()
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)

    def fork(self, config: Path, log: Path) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{config}\t{log}\n")
        self.process.stdin.flush()
        return int(self.process.stdout.readline())

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _clean_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in list(env):
        if name.startswith(("DATABRICKS_", "AZURE_", "OPENAI_", "REMEDIATOR_")):
            del env[name]
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class Forked:
    """``remediator serve --config FILE`` forked from a :class:`Zygote`."""

    zygote: Zygote
    config: Path
    port: int
    log: Path
    pid: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, bound_s: float = 60.0) -> None:
        self.pid = self.zygote.fork(self.config, self.log)
        _wait_ready(self.url, lambda: _alive(self.pid), self.log, bound_s)

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(self.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"pid {self.pid} survived SIGKILL for 30 s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.pid and _alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(self.pid):
                self.kill9()

    def rss_kib(self) -> int:
        return _rss_kib(self.pid)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait_ready(url: str, alive: Any, log: Path, bound_s: float) -> None:
    deadline = time.monotonic() + bound_s
    while True:
        if not alive():
            raise RuntimeError(f"serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve not ready in {bound_s} s")
        time.sleep(0.05)


@dataclass
class Serve:
    """``remediator serve --config FILE`` as a child process; its log goes to ``log``."""

    config: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, bound_s: float = 60.0) -> None:
        env = _clean_env()
        script = Path(sys.executable).parent / "remediator"
        command = ([str(script)] if script.exists()
                   else [sys.executable, "-c", "from cli import main; main()"])
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([*command, "serve", "--config", str(self.config)],
                                            cwd=self.config.parent, env=env, stdout=out,
                                            stderr=subprocess.STDOUT)
        process = self.process
        _wait_ready(self.url, lambda: process.poll() is None, self.log, bound_s)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_kib(self) -> int:
        """Resident memory of the process, from /proc."""
        assert self.process is not None
        return _rss_kib(self.process.pid)


def make_serve(workdir: Path, sandbox: Any, *, playbook: str = RERUN_PLAYBOOK,
               lease_s: int = 2, max_claims: int = 5, extra: str = "",
               zygote: Zygote | None = None, db: str | None = None) -> Any:
    """Write the playbook and the settings under ``workdir``; the process is not started
    (a :class:`Serve`, or a :class:`Forked` one when a ``zygote`` is given). ``db``: a
    PostgreSQL URL that several replicas share (default: a SQLite file in ``workdir``)."""
    playbooks = workdir / "playbooks"
    playbooks.mkdir(parents=True, exist_ok=True)
    (playbooks / "harness.yaml").write_text(playbook)
    port = free_port()
    config = workdir / "remediator.toml"
    config.write_text(settings_toml(sandbox, db=db or workdir / "remediator.db",
                                    playbooks=playbooks,
                                    port=port, lease_s=lease_s, max_claims=max_claims,
                                    extra=extra))
    if zygote is not None:
        return Forked(zygote=zygote, config=config, port=port, log=workdir / "serve.log")
    return Serve(config=config, port=port, log=workdir / "serve.log")


def post_failure(client: httpx.Client, url: str, payload: dict[str, Any]) -> httpx.Response:
    return client.post(f"{url}/azure-monitor", json=payload, headers={"x-api-key": RECEIVER_KEY})
