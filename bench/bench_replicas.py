"""Intake of several replicas on one PostgreSQL database, against one process on SQLite.

Each replica is the service's HTTP side (``create_app`` under ``serve``'s server, API key auth,
JSON logs; bench/_server.py) on its own port; every replica gets its own closed-loop client
(bench/_load.py, the eight real-format webhook samples, every request a new event), all at
once. Reported per setting: webhooks per second (all replicas together and per replica) and
CPU per stored webhook, the replicas' own and PostgreSQL's (from /proc): the box has two
cores, so what several replicas change shows as cost per event, not as absolute speed. After
each setting the inbox is counted: every acknowledged webhook must be a stored event.

    .venv/bin/python bench/bench_replicas.py                        # ~2 min
    .venv/bin/python bench/bench_replicas.py --requests 4000 --replicas 1 2 4

Without ``--db`` it starts its own PostgreSQL server as the tests do (tests/fixtures/postgres.py,
Debian's package).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from _server import ROOT, Server, check_specs_unique, machine, webhook_specs

sys.path.insert(0, str(ROOT))

from engine.store.db import Database
from tests.fixtures.postgres import PgServer, find_bin


def _tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) of ``root_pid`` and its children (PostgreSQL's backends)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if root_pid in (pid, ppid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _stored(db_target: str) -> int:
    db = Database(db_target)
    try:
        return db.query("SELECT count(*) AS n FROM events")[0]["n"]
    finally:
        db.close()


def run(targets: list[str], requests: int, concurrency: int, tmp: Path,
        pg_pid: int | None) -> dict[str, Any]:
    """One setting: a replica per target (the same database), a client per replica."""
    specs = webhook_specs()
    servers = [Server(Path(t) if not t.startswith("postgresql") else tmp / f"r{i}.db",
                      cpu=None, log=tmp / f"r{i}.log") for i, t in enumerate(targets)]
    for server, target in zip(servers, targets, strict=True):
        server.args[server.args.index("--db") + 1] = target
    results: list[dict[str, Any]] = [{} for _ in servers]
    for server in servers:
        server.__enter__()
    try:
        pg_before = _tree_cpu(pg_pid) if pg_pid else 0.0
        replica_before = sum(s.cpu_seconds() for s in servers)

        def drive(i: int) -> None:
            results[i] = servers[i].load(specs, cpu=1, uid_base=i * 10**9,
                                         requests=requests // len(servers),
                                         concurrency=concurrency)

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(servers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        replica_cpu = sum(s.cpu_seconds() for s in servers) - replica_before
        pg_cpu = (_tree_cpu(pg_pid) - pg_before) if pg_pid else 0.0
    finally:
        for server in servers:
            server.__exit__(None, None, None)
    acked = sum(r["statuses"].get("202", 0) for r in results)
    seconds = max(r["seconds"] for r in results)
    return {"replicas": len(servers), "acked": acked, "stored": _stored(targets[0]),
            "rps": acked / seconds, "rps_each": acked / seconds / len(servers),
            "replica_cpu_ms": replica_cpu * 1000 / max(acked, 1),
            "db_cpu_ms": pg_cpu * 1000 / max(acked, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: own server)")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    check_specs_unique()
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    server = None
    if args.db is None:
        bindir = find_bin()
        if bindir is None:
            raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
        server = PgServer(bindir)
        server.start()
        server.create_template()
    print(f"# {machine()}; {args.requests} webhooks per setting, {args.concurrency} "
          "connections per replica")
    print(f"{'backend':<10} {'replicas':>8} {'webhooks/s':>11} {'per replica':>12} "
          f"{'replica cpu ms':>15} {'db cpu ms':>10} {'acked':>7} {'stored':>7}")
    try:
        rows = [("sqlite", run([str(tmp / "sqlite.db")], args.requests, args.concurrency,
                               tmp, None))]
        for n in args.replicas:
            url = server.fresh() if server is not None else args.db
            pg_pid = server.process.pid if server is not None and server.process else None
            rows.append(("postgresql", run([url] * n, args.requests, args.concurrency, tmp,
                                           pg_pid)))
        for backend, r in rows:
            print(f"{backend:<10} {r['replicas']:>8} {r['rps']:>11,.0f} {r['rps_each']:>12,.0f} "
                  f"{r['replica_cpu_ms']:>15.3f} {r['db_cpu_ms']:>10.3f} {r['acked']:>7} "
                  f"{r['stored']:>7}")
            if r["stored"] < r["acked"]:
                raise SystemExit(f"{backend}: {r['acked']} acknowledged, {r['stored']} stored")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
