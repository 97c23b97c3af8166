"""Cost growth: intake with 0, 1 and 10 million stored events, and worker throughput (dry-run).

Part 1: one SQLite file grows in steps by bulk SQL (a recursive CTE straight into the events
table, every index in place; each row holds a real stored event, ``raw`` left as ``{}`` to
spare disk); at each size the service is started on it and takes the same webhook load as
bench_intake.py. Part 2: the worker in dry-run with the shipped playbooks (playbooks/) takes
events received through the intake path from inbox to decision (``run_once`` until nothing is
pending), no cloud calls.

    .venv/bin/python bench/bench_growth.py                          # 0, 1M, 10M (~15 min)
    .venv/bin/python bench/bench_growth.py --sizes 0,1000000 --worker-events 2000
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from _server import ROOT, Server, check_specs_unique, machine, webhook_specs

_FILL = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO events (id, dedup_key, received_ms, endpoint, source, kind, status, resource,
                    run_id, fingerprint, event, raw, state)
SELECT printf('evt_%012x%010x', ? + i / 1000, i), 'bench-fill:' || i, ? + i / 1000,
       'azure-monitor', 'adf', 'pipeline_run', 'firing', 'pl_' || (i % 500), 'run-' || i,
       printf('%016x', i % 5000), ?, '{}', 'done'
FROM n
"""


def _stored_event_json() -> str:
    """One real event as the inbox stores it (a parsed sample, encoded like insert does)."""
    import msgspec

    from receivers import intake

    _, _, body = webhook_specs()[1]
    payload = intake.decode(body.replace("~UID~", "0").encode())
    [event, *_] = intake.normalize("azure-monitor", payload)
    return msgspec.json.encode(event).decode()


def fill(db: Path, start: int, stop: int) -> float:
    """Add events ``start``..``stop - 1``; seconds taken."""
    from engine.store import Database

    Database(db).close()  # the schema
    began = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # a bench fill, not the service's writes
    base = 1_600_000_000_000
    event = _stored_event_json()
    step = 500_000
    for lo in range(start, stop, step):
        hi = min(stop, lo + step) - 1
        conn.execute("BEGIN")
        conn.execute(_FILL, (lo, hi, base, base, event))
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - began


def intake_growth(sizes: list[int], requests: int, concurrency: int, keep: Path | None) -> None:
    print(f"{'stored':>12} {'fill s':>7} {'db MB':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'cpu ms/req':>10} {'RSS MB':>7}  statuses")
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        db = Path(tmp) / "growth.db"
        have = 0
        for i, size in enumerate(sorted(sizes)):
            took = fill(db, have, size) if size > have else 0.0
            have = max(have, size)
            with Server(db) as server:
                r = server.load(webhook_specs(), requests=requests, concurrency=concurrency,
                                uid_base=(i + 1) * 10**10)
                rss, _ = server.rss_mb()
            mb = db.stat().st_size / 2**20
            print(f"{size:>12,} {took:>7.0f} {mb:>7,.0f} {r['rps']:>8,.0f} {r['p50_ms']:>7.2f} "
                  f"{r['p99_ms']:>7.2f} {r['cpu_ms']:>10.3f} {rss:>7.0f}  {r['statuses']}",
                  flush=True)


def worker_throughput(events: int) -> None:
    from engine.actions.clients import Clients
    from engine.actions.context import ActionContext
    from engine.actions.registry import action_table
    from engine.config import load_settings
    from engine.rules.active import ActivePlaybooks
    from engine.store import Database, inbox
    from engine.worker import Worker
    from receivers import intake

    settings = load_settings(None, env={})
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "worker.db")
        specs = webhook_specs()
        for n in range(events):
            path, _, body = specs[n % len(specs)]
            payload = intake.decode(body.replace("~UID~", f"{n:012d}").encode())
            intake.store(db, path[1:], intake.normalize(path[1:], payload), payload)
        pending = inbox.count_pending(db)
        clients = Clients(settings.clouds)
        worker = Worker(db, ActivePlaybooks([ROOT / "playbooks"], action_table()),
                        action_table(), ActionContext(clients=clients), settings)
        began = time.perf_counter()
        while worker.run_once():
            pass
        took = time.perf_counter() - began
        worker.stop()
        clients.close()
        states = {row["state"]: row["n"] for row in
                  db.query("SELECT state, count(*) AS n FROM events GROUP BY state")}
        db.close()
    print(f"worker, dry-run, shipped playbooks: {pending:,} events from inbox to decision in "
          f"{took:.1f} s = {pending / took:,.0f} events/s; states {states}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="0,1000000,10000000")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--worker-events", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the big file goes")
    args = parser.parse_args()
    check_specs_unique()
    print(f"growth: {machine()}; {args.requests:,} webhooks per size at concurrency "
          f"{args.concurrency}")
    if args.sizes:
        intake_growth([int(s) for s in args.sizes.split(",")], args.requests, args.concurrency,
                      args.dir)
    if args.worker_events:
        worker_throughput(args.worker_events)


if __name__ == "__main__":
    main()
