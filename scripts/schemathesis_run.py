"""Schemathesis against the app's own OpenAPI document, the app served by uvicorn in this
process on a free loopback port over a fresh database.

Usage: .venv/bin/python scripts/schemathesis_run.py [--max-examples 25] [--seed 1]
(needs the ``bench`` extra: ``.venv/bin/pip install -e '.[bench]'``)

The schema is fetched from /schema/openapi.json with the admin key. The run is done twice with
the schemathesis CLI (``schemathesis run``, check ``not_a_server_error``, bounded examples per
operation): once with the admin key (opens /api, /schema, the dashboard; the receivers answer
401) and once with a receiver key (opens the receivers). Exit status: 0 when both runs pass.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import Secret, Settings  # noqa: E402
from engine.runtime.service import Service  # noqa: E402
from engine.store.db import Database  # noqa: E402

ADMIN_KEY = "ak-schemathesis-4f1e"
RECEIVER_KEY = "rk-schemathesis-9b2c"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(folder: Path) -> tuple[uvicorn.Server, threading.Thread, str]:
    from receivers.app import create_app

    settings = Settings(db=str(folder / "remediator.db"), playbooks=str(ROOT / "playbooks"),
                        api_keys=(Secret(RECEIVER_KEY),), admin_keys=(Secret(ADMIN_KEY),))
    db = Database(settings.db)
    port = _free_port()
    # The whole service (engine, worker, scheduler) as `remediator serve` runs it: /api needs it.
    app = create_app(settings, db, service=Service(settings, db))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1",
                                           port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, thread, url = _serve(Path(tmp))
        try:
            schema = httpx.get(f"{url}/schema/openapi.json", headers={"x-api-key": ADMIN_KEY})
            schema.raise_for_status()
            schema_file = Path(tmp) / "openapi.json"
            schema_file.write_bytes(schema.content)
            print(f"schema: {len(schema.json().get('paths', {}))} paths", flush=True)
            failed = 0
            for label, key in (("admin key", ADMIN_KEY), ("receiver key", RECEIVER_KEY)):
                print(f"== schemathesis with the {label}", flush=True)
                done = subprocess.run(
                    [str(Path(sys.executable).parent / "schemathesis"), "run", str(schema_file),
                     "--url", url, "-H", f"x-api-key: {key}", "--checks", "not_a_server_error",
                     "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                     "--no-color"],
                    check=False, timeout=1800)
                failed += done.returncode != 0
        finally:
            server.should_exit = True
            thread.join(timeout=20)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
