"""Where a webhook's CPU goes: each intake stage timed in-process on the eight samples.

No HTTP, one thread: the caller's check, decode, parse, redaction, the log line, the answer,
and the inbox insert (one transaction per webhook, and 16 per transaction as group commit does
under load) against a fresh SQLite file. CPU microseconds per webhook (``time.process_time``,
so the kernel's share of SQLite's writes is in), median of ``--repeat`` runs. What it leaves
out is the HTTP server and Litestar (bench_instructions.py compares the whole request with
``/health``).

    .venv/bin/python bench/bench_stages.py
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from _server import API_KEY, machine, webhook_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import structlog

    from engine.config import Secret, Settings
    from engine.logs import configure_logging
    from engine.store import inbox
    from engine.store.db import Database
    from receivers import intake
    from receivers.auth import Authenticator

    specs = webhook_specs()
    n = args.webhooks
    bodies = [(specs[i % len(specs)][0][1:],
               specs[i % len(specs)][2].replace("~UID~", f"{i:012d}").encode())
              for i in range(n)]
    payloads = [intake.decode(b) for _, b in bodies]
    prepared = [intake.prepare(ep, b) for ep, b in bodies]
    parsed = [intake.normalize(ep, b) for ep, b in bodies]
    authenticator = Authenticator(Settings(api_keys=(Secret(API_KEY),)))
    headers = {"content-type": "application/json", "x-api-key": API_KEY}
    configure_logging("info", "json", stream=io.StringIO())
    log = structlog.get_logger("bench")
    encoder = msgspec.json.Encoder()
    answer = {"event_id": "evt_0193a1b2c3d4e5f6a7b8c9", "duplicate": False, "status": "firing"}

    def stage(fn: Callable[[], Any]) -> float:
        runs = []
        for _ in range(args.repeat):
            began = time.process_time()
            fn()
            runs.append((time.process_time() - began) / n * 1e6)
        return statistics.median(runs)

    print(f"stages: {machine()}; {n:,} webhooks (the eight samples), median of {args.repeat}")
    rows: list[tuple[str, Callable[[], Any]]] = [
        ("check the caller (API key)",
         lambda: [authenticator.check(ep, headers, {}) for ep, _ in bodies]),
        ("decode (msgspec + depth check)", lambda: [intake.decode(b) for _, b in bodies]),
        ("parse (the sender's parser)",
         lambda: [intake.normalize(ep, b) for ep, b in bodies]),
        ("redact events and payload",
         lambda: [intake.redacted(events, p) for events, p in zip(parsed, payloads, strict=True)]),
        ("log line (structlog, JSON)",
         lambda: [log.info("intake", event_id=answer["event_id"], endpoint=ep, duplicate=False,
                           status="firing", events=1, ms=1.0) for ep, _ in bodies]),
        ("answer (encode the 202 body)", lambda: [encoder.encode(answer) for _ in bodies]),
    ]
    for name, fn in rows:
        print(f"{name:<34} {stage(fn):>9,.0f} µs/webhook")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "stages.db")
        runs = iter(range(10**9))

        def store(per_commit: int) -> Callable[[], None]:
            def run() -> None:
                k = next(runs)
                rows = [([msgspec.structs.replace(e, dedup_key=f"{e.dedup_key}#{k}")
                          for e in events], raw, ep)
                        for (ep, _), (events, raw) in zip(bodies, prepared, strict=True)]
                for i in range(0, len(rows), per_commit):
                    inbox.insert_batch(db, rows[i:i + per_commit])
            return run

        print(f"{'insert, one commit per webhook':<34} {stage(store(1)):>9,.0f} µs/webhook")
        print(f"{'insert, 16 webhooks per commit':<34} {stage(store(16)):>9,.0f} µs/webhook")
        db.close()


if __name__ == "__main__":
    main()
