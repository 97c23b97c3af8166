"""What the HTTP benches share: the service under uvicorn in its own process, and the payloads.

``python bench/_server.py --db X --port P`` runs ``create_app`` with a durable SQLite inbox,
API key auth and JSON logging at info (to stderr, as ``remediator serve`` does), pinned to
one core, under the server ``serve`` runs (receivers/server.py: httptools with the
connection limits of ``[http]``'s defaults). :class:`Server` starts it from a bench, waits
for ``/health`` and reads its RSS.
:func:`webhook_specs` builds the request templates of :mod:`bench._load` from the real-format
samples in tests/testdata/samples, each with a ``~UID~`` where its dedup key comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_KEY = "bench-key-5f1e2a9c7d"
SAMPLES = ROOT / "tests" / "testdata" / "samples"

# sample -> (endpoint, where its dedup key comes from)
_WEBHOOKS: dict[str, tuple[str, str]] = {
    "azure-monitor/azmon-common-activitylog.json": ("azure-monitor", "alertId"),
    "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json": ("azure-monitor",
                                                                            "alertId"),
    "azure-monitor/azmon-common-logv2-appinsights-exception.json": ("azure-functions-monitor",
                                                                      "alertId"),
    "azure-monitor/azmon-common-metric-adf-pipelinefailed.json": ("azure-monitor", "alertId"),
    "azure-monitor/azmon-common-metric-synapse-failed.json": ("synapse-monitor", "alertId"),
    "azure-monitor/azmon-legacy-metric-adf.json": ("azure-monitor", "context.id"),
    "databricks/databricks-job-on-failure.json": ("databricks-monitor", "run_id"),
    "databricks/databricks-task-on-failure.json": ("databricks-monitor", "run_id"),
}


def _mark(doc: dict[str, Any], how: str) -> None:
    if how == "alertId":
        essentials = doc["data"]["essentials"]
        essentials["alertId"] = essentials["alertId"] + "-~UID~"
    elif how == "context.id":
        doc["data"]["context"]["id"] += "-~UID~"
    else:
        run = doc["run"]
        run["run_id"] = "9~UID~"


def webhook_specs() -> list[tuple[str, dict[str, str], str]]:
    """``[path, headers, body]`` of every webhook sample, each body with a ``~UID~``."""
    specs = []
    for sample, (endpoint, how) in _WEBHOOKS.items():
        doc = json.loads((SAMPLES / sample).read_text())
        _mark(doc, how)
        headers = {"content-type": "application/json", "x-api-key": API_KEY}
        specs.append((f"/{endpoint}", headers, json.dumps(doc)))
    return specs


def health_specs() -> list[tuple[str, dict[str, str], str]]:
    return [("/health", {}, "")]


def check_specs_unique() -> None:
    """Every template gives one new event per uid (so none of the load is a duplicate)."""
    from receivers import intake

    for path, _, body in webhook_specs():
        keys = set()
        for uid in (1, 2):
            payload = intake.decode(body.replace("~UID~", f"{uid:012d}").encode())
            events = intake.normalize(path[1:], payload)
            if not events:
                raise SystemExit(f"{path}: the sample yields no event")
            keys.update(e.dedup_key for e in events)
        if len(keys) != 2 * len(events):
            raise SystemExit(f"{path}: the uid does not reach the dedup key")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    return (f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
            f"{time.strftime('%Y-%m-%d')}")


class Server:
    """The service in a child process pinned to ``cpu`` (None: free to use every core); a
    context manager."""

    def __init__(self, db: Path, *, cpu: int | None = 0, sync_full: bool = False,
                 loop: str = "uvloop", http: str = "httptools", log: Path | None = None,
                 bare: bool = False) -> None:
        self.port = free_port()
        self.args = [sys.executable, str(ROOT / "bench" / "_server.py"), "--db", str(db),
                     "--port", str(self.port), "--loop", loop,
                     "--http", http] + (["--sync-full"] if sync_full else [])
        self.args += ["--cpu", str(cpu)] if cpu is not None else []
        self.args += ["--bare"] if bare else []
        self.log = log or db.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(self.args, stderr=self._log, stdout=self._log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited; see {self.log}") from None
                time.sleep(0.1)
        raise SystemExit("server did not start in 30 s")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()

    def rss_mb(self) -> tuple[float, float]:
        """Current and peak resident memory of the server (from /proc)."""
        assert self.proc is not None
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far (from /proc)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wrk(self, specs: list[tuple[str, dict[str, str], str]], *, seconds: float,
            connections: int = 64, threads: int = 1, cpu: int | None = 1,
            uid_base: int = 0) -> dict[str, Any]:
        """Run wrk (C, Debian's package) against this server for ``seconds``; a summary like
        :meth:`load`'s (wrk keeps its connections busy: a closed loop)."""
        script = self.log.with_suffix(f".wrk{uid_base}.lua")
        script.write_text(wrk_script(specs, uid_base))
        args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script),
                f"http://127.0.0.1:{self.port}"]
        if cpu is not None:
            args = ["taskset", "-c", str(cpu), *args]
        before = self.cpu_seconds()
        done = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        used = self.cpu_seconds() - before
        out = json.loads(done.strip().splitlines()[-1])
        answered = out["requests"] - out["socket_errors"]
        out["rps"] = round(answered / out["seconds"], 1)
        out["errors"] = out["socket_errors"]
        out["statuses"] = {"2xx": answered - out["non2xx"], "other": out["non2xx"]}
        out["cpu_ms"] = round(used * 1000 / max(answered, 1), 3)
        return out

    def load(self, specs: list[tuple[str, dict[str, str], str]], *, cpu: int = 1,
             uid_base: int = 0, **options: Any) -> dict[str, Any]:
        """Run bench/_load.py against this server on core ``cpu``; its JSON summary."""
        bodies = self.log.with_suffix(f".bodies{uid_base}.json")
        bodies.write_text(json.dumps(specs))
        args = [sys.executable, str(ROOT / "bench" / "_load.py"), "--port", str(self.port),
                "--bodies", str(bodies), "--cpu", str(cpu), "--uid-base", str(uid_base)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        cpu = self.cpu_seconds()
        out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        used = self.cpu_seconds() - cpu
        # Server CPU per answered request: what the load costs, whatever else runs on the box.
        out["cpu_ms"] = round(used * 1000 / max(out["requests"], 1), 3)
        return out


_WRK_SCRIPT = """
-- Written by bench/_server.py: the request templates, each ~UID~ replaced by a fresh number
-- (thread k counts from uid_base + k * 10^9), and a JSON summary at the end.
local specs = {SPECS}
local uid_base = {UID_BASE}
local threads = {}
local thread_id = 0
local counter = 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id
end

function request()
  counter = counter + 1
  local spec = specs[(counter % #specs) + 1]
  local body = spec.body
  if body ~= "" then
    body = string.gsub(body, "~UID~", string.format("%012d", uid_base + thread_id * 1e9 + counter))
    return wrk.format("POST", spec.path, spec.headers, body)
  end
  return wrk.format("GET", spec.path, spec.headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def _lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def wrk_script(specs: list[tuple[str, dict[str, str], str]], uid_base: int) -> str:
    """The Lua script for wrk that sends ``specs`` in rotation, each with a fresh uid."""
    entries = []
    for path, headers, body in specs:
        head = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
        entries.append(f"{{path = {_lua_string(path)}, headers = {{{head}}}, "
                       f"body = {_lua_string(body)}}}")
    return (_WRK_SCRIPT.replace("{SPECS}", "{" + ",\n".join(entries) + "}")
            .replace("{UID_BASE}", str(uid_base)))


async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """What uvicorn alone can answer on this machine: a constant JSON body."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


def main() -> None:
    parser = argparse.ArgumentParser(description="the service for the benches")
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    parser.add_argument("--sync-full", action="store_true")
    parser.add_argument("--bare", action="store_true",
                        help="a 10-line ASGI app instead of the service: uvicorn's own ceiling")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    import uvicorn

    from engine.config import HttpSettings, Secret, Settings
    from engine.logs import configure_logging
    from engine.store.db import Database
    from receivers.app import create_app
    from receivers.server import build_server

    def run(app: Any) -> None:
        if args.http == "httptools":  # what `remediator serve` runs
            build_server(app, HttpSettings(), host="127.0.0.1", port=args.port,
                         loop=args.loop).run()
        else:  # uvicorn's own h11 protocol, for comparison
            uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None,
                        access_log=False, server_header=False, loop=args.loop, http=args.http)

    if args.bare:
        run(_bare_app)
        return
    settings = Settings(db=args.db, api_keys=(Secret(API_KEY),), sync_full=args.sync_full)
    configure_logging("info", "json")
    database = Database(settings.db, sync_full=settings.sync_full)
    try:
        run(create_app(settings, database))
    finally:
        database.close()


if __name__ == "__main__":
    main()
