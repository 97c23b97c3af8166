"""Cost growth: intake with 0, 1 and 10 million stored events, and worker throughput (dry-run).

Part 1: for each size a SQLite file is filled by bulk SQL (a recursive CTE straight into the
events table; every row holds a real stored event: the 8 webhook samples of the load, each
with its own uid, id and one of 500 resources per sample with its real fingerprint; ``raw``
is left as ``{}`` to spare disk: ~3.4 GB per million rows), then the service is
started on it and takes the same webhook load as bench_intake.py. Every index of the
service's schema is in place while the service runs. With ``--dir`` the filled files are
kept there (``growth-<size>.db`` and a ``.rows`` marker of how many rows the fill wrote), and
a later run fills nothing and only measures (each measurement adds its requests' rows, with
uids no earlier run used). The fill keeps every index in place (as the service's own inserts
leave them), writes without journal or sync through a 4 GB page cache, 1M rows per commit.
At each size the store alone then takes ``--probe-events`` inserts with random dedup keys
(the HTTP load's keys are sequential uids, which land at the same few index pages).
Part 2: the worker in dry-run with the shipped playbooks (playbooks/) takes events received
through the intake path from inbox to decision (``drain`` until nothing is pending), no
cloud calls.

    .venv/bin/python bench/bench_growth.py --dir ~/remediator-bench       # 0, 1M, 10M
    .venv/bin/python bench/bench_growth.py --dir ~/remediator-bench --fill-only --sizes 10000000
    .venv/bin/python bench/bench_growth.py --sizes 0,1000000 --worker-events 2000
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _server import ROOT, Server, check_specs_unique, machine, webhook_specs

_UID = "000000000000"  # the uid the templates are rendered with; each row puts its own there
_RESOURCES = 500  # resources (with their fingerprints) per sample
_BASE_MS = 1_600_000_000_000  # fill rows are older than anything the service writes
_STEP_MS = 50  # 20 events/s: 10M rows span ~6 days

_FILL = f"""
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?),
     r(i, id, ms, uid) AS (
       SELECT i, printf('evt_%012x%010x', {_BASE_MS} + i * {_STEP_MS}, i),
              {_BASE_MS} + i * {_STEP_MS}, printf('%012d', i) FROM n)
INSERT INTO events (id, dedup_key, received_ms, endpoint, source, kind, status, resource,
                    run_id, fingerprint, event, raw, state, attempts)
SELECT r.id, replace(t.dedup_key, '{_UID}', r.uid), r.ms, t.endpoint, t.source, t.kind,
       t.status, t.resource, replace(t.run_id, '{_UID}', r.uid), t.fingerprint,
       replace(replace(t.event, '{_UID}', r.uid), '"id":""', '"id":"' || r.id || '"'),
       '{{}}', 'done', 1
FROM r JOIN fill_templates AS t ON t.k = r.i % ?
"""


def _templates() -> list[tuple[object, ...]]:
    """Stored events of the load's samples (as insert encodes them, ``id`` empty), each for
    ``_RESOURCES`` resources with the fingerprint the service computes for it."""
    import msgspec

    from receivers import intake

    events = []
    for path, _, body in webhook_specs():
        payload = intake.decode(body.replace("~UID~", _UID).encode())
        [event] = intake.normalize(path[1:], payload)
        events.append((path[1:], event))
    out: list[tuple[object, ...]] = []
    # Row i takes template i % len: the samples interleave, each resource in turn.
    for r in range(_RESOURCES):
        for endpoint, event in events:
            e = msgspec.structs.replace(event, resource=f"{event.resource}_{r}").with_fingerprint()
            out.append((len(out), endpoint, e.source, e.kind, e.status, e.dedup_key, e.resource,
                        e.run_id, e.fingerprint, msgspec.json.encode(e).decode()))
    return out


def _marker(db: Path) -> Path:
    return db.with_name(db.name + ".rows")


def filled_rows(db: Path) -> int | None:
    """Rows the fill wrote into ``db``, or None if no complete fill is recorded."""
    marker = _marker(db)
    return int(marker.read_text()) if db.exists() and marker.exists() else None


@contextlib.contextmanager
def _fill_connection(db: Path, cache_mb: int) -> Iterator[sqlite3.Connection]:
    """A connection for the fill only: no journal (a crash leaves no marker and the file is
    filled anew), no sync, a big page cache so index pages stay in memory."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")  # leave WAL (needs the file to ourselves)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    conn.execute("PRAGMA temp_store=MEMORY")
    try:
        yield conn
    finally:
        conn.execute("PRAGMA journal_mode=WAL")  # as the service keeps it
        conn.close()


def fill(db: Path, size: int, *, cache_mb: int = 4096, step: int = 1_000_000) -> float:
    """Fill ``db`` up to ``size`` fill rows (from what an earlier fill left); seconds taken."""
    from engine.store.db import Database

    have = filled_rows(db)
    if have is None:
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)
        have = 0
    if have >= size:
        return 0.0
    Database(db).close()  # the schema, every index included
    began = time.perf_counter()
    _marker(db).unlink(missing_ok=True)
    with _fill_connection(db, cache_mb) as conn:
        conn.execute("CREATE TEMP TABLE fill_templates (k INTEGER PRIMARY KEY, endpoint, source,"
                     " kind, status, dedup_key, resource, run_id, fingerprint, event)")
        templates = _templates()
        conn.executemany("INSERT INTO fill_templates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         templates)
        for lo in range(have, size, step):
            hi = min(size, lo + step) - 1
            conn.execute("BEGIN")
            conn.execute(_FILL, (lo, hi, len(templates)))
            conn.execute("COMMIT")
            print(f"  filled {hi + 1:,} rows in {time.perf_counter() - began:,.0f} s", flush=True)
    took = time.perf_counter() - began
    check(db, size)
    _marker(db).write_text(str(size))
    return took


def check(db: Path, size: int) -> None:
    """Fail unless ``db`` has the service's every index and its last fill row is a stored
    event whose columns agree with its JSON (id, dedup key, resource, the real fingerprint)."""
    import msgspec

    from engine.events import ErrorEvent, fingerprint
    from engine.store.db import Database

    def indexes(conn: sqlite3.Connection) -> set[tuple[str, str]]:
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        return {(name, text) for name, text in conn.execute(sql)}

    fresh = Database(":memory:")
    conn = sqlite3.connect(db)
    try:
        want, have = indexes(fresh._conn), indexes(conn)
        row = conn.execute("SELECT id, dedup_key, resource, fingerprint, event FROM events "
                           "WHERE id = printf('evt_%012x%010x', ?, ?)",
                           (_BASE_MS + (size - 1) * _STEP_MS, size - 1)).fetchone()
    finally:
        conn.close()
        fresh.close()
    if want != have:
        raise SystemExit(f"{db}: indexes differ from the service's schema: {want ^ have}")
    if row is None:
        raise SystemExit(f"{db}: fill row {size - 1} missing")
    event = msgspec.json.decode(row[4], type=ErrorEvent)
    if ((event.id, event.dedup_key, event.resource, event.fingerprint) != tuple(row[:4]) or
            fingerprint(event.source, event.resource, event.error_code, event.message)
            != event.fingerprint or f"{size - 1:012d}" not in event.dedup_key):
        raise SystemExit(f"{db}: fill row {size - 1} does not agree with its JSON: {row[:4]}")


def _rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0])
    finally:
        conn.close()


def _measure(db: Path, size: int, took: float, requests: int, concurrency: int) -> None:
    before = _rows(db) if db.exists() else 0
    # Fresh uids in every run (microseconds since the epoch, far above the fill's), so that no
    # request of a kept file's later run is a duplicate of an earlier one.
    uid_base = time.time_ns() // 1000
    with Server(db) as server:
        r = server.load(webhook_specs(), requests=requests, concurrency=concurrency,
                        uid_base=uid_base)
        rss, _ = server.rss_mb()
    db.with_suffix(f".bodies{uid_base}.json").unlink(missing_ok=True)  # what load() wrote
    added = _rows(db) - before
    mb = db.stat().st_size / 2**20
    print(f"{size:>12,} {before:>12,} {took:>7.0f} {mb:>8,.0f} {r['rps']:>8,.0f} "
          f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['cpu_ms']:>10.3f} {rss:>7.0f} "
          f"{added:>7,}  {r['statuses']}", flush=True)


def store_probe(db: Path, events: int, *, batch: int = 16) -> tuple[float, float]:
    """Wall and CPU microseconds per event of ``inbox.insert_batch`` (the receivers' group
    commit) in-process, with a random dedup key per event (as real alert ids are GUIDs: each
    insert lands at a random page of the dedup index, where the HTTP load's sequential uids
    land at the same few pages); the events are the load's samples."""
    import uuid

    import msgspec

    from engine.store import inbox
    from engine.store.db import Database
    from receivers import intake

    specs = webhook_specs()
    payloads = []
    for i in range(events):
        path, _, body = specs[i % len(specs)]
        payload = intake.decode(body.replace("~UID~", _UID).encode())
        [event] = intake.normalize(path[1:], payload)
        key = event.dedup_key.replace(_UID, str(uuid.uuid4()))
        payloads.append(([msgspec.structs.replace(event, dedup_key=key)], payload, path[1:]))
    database = Database(db)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for lo in range(0, events, batch):
            inbox.insert_batch(database, payloads[lo:lo + batch])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        database.close()
    return wall * 1e6 / events, cpu * 1e6 / events


def intake_growth(sizes: list[int], requests: int, concurrency: int, keep: Path | None,
                  fill_only: bool, probe: int) -> None:
    if not fill_only:
        print(f"{'filled':>12} {'rows before':>12} {'fill s':>7} {'db MB':>8} {'req/s':>8} "
              f"{'p50 ms':>7} {'p99 ms':>7} {'cpu ms/req':>10} {'RSS MB':>7} {'added':>7}  "
              "statuses")
    probes: list[str] = []
    with tempfile.TemporaryDirectory(dir=keep) as tmp:
        for size in sorted(sizes):
            # Size 0 is always a fresh file; the others are kept in ``keep`` if given.
            db = (keep if keep and size else Path(tmp)) / f"growth-{size}.db"
            took = fill(db, size) if size else 0.0
            if size:
                # A kept file was filled under an earlier schema: the service's own migration
                # adds what is new (however long it takes), then the file is checked again.
                from engine.store.db import Database

                Database(db).close()
                check(db, size)
            if fill_only:
                print(f"{size:,} rows: filled in {took:,.0f} s, "
                      f"{db.stat().st_size / 2**30:,.2f} GiB", flush=True)
            else:
                _measure(db, size, took, requests, concurrency)
                if probe:
                    before = _rows(db)
                    wall, cpu = store_probe(db, probe)
                    probes.append(f"{size:>12,} {before:>12,} {wall:>9.1f} {cpu:>8.1f}")
    if probes:
        print(f"store only, inbox.insert_batch of {probe:,} events with random dedup keys, "
              "batches of 16, in-process:")
        print(f"{'filled':>12} {'rows before':>12} {'wall us':>9} {'cpu us':>8}  (per event)")
        print("\n".join(probes), flush=True)


def worker_throughput(events: int) -> None:
    from engine.actions.context import ActionContext
    from engine.actions.registry import action_table
    from engine.cloud.clients import Clients
    from engine.config import load_settings
    from engine.rules.active import ActivePlaybooks
    from engine.runtime.worker import Worker
    from engine.store import inbox
    from engine.store.db import Database
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
        while worker.drain():
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
    parser.add_argument("--dir", type=Path, default=None,
                        help="keep the filled files here and reuse them in later runs")
    parser.add_argument("--fill-only", action="store_true", help="fill, measure nothing")
    parser.add_argument("--probe-events", type=int, default=5_000,
                        help="store-only inserts with random dedup keys per size (0: none)")
    args = parser.parse_args()
    check_specs_unique()
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    if not args.fill_only:
        print(f"growth: {machine()}; {args.requests:,} webhooks per size at concurrency "
              f"{args.concurrency}")
    if args.sizes:
        intake_growth([int(s) for s in args.sizes.split(",")], args.requests, args.concurrency,
                      args.dir, args.fill_only, args.probe_events)
    if args.worker_events and not args.fill_only:
        worker_throughput(args.worker_events)


if __name__ == "__main__":
    main()
