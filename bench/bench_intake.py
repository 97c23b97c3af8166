"""Intake throughput and latency of the service against its own ceiling (``/health``).

The service (``create_app``, durable SQLite inbox, API key auth, JSON logs at info) runs under
uvicorn (uvloop + httptools, one process) pinned to core 0; bench/_load.py runs on core 1.
For each durability setting: ``/health`` closed loop (the ceiling: same server, no storage),
webhooks closed loop (the eight real-format samples, every one a new event), then webhooks
open loop at a fixed offered rate (latency measured from when each request was due).

    .venv/bin/python bench/bench_intake.py                   # ~1 min
    .venv/bin/python bench/bench_intake.py --requests 50000 --rate 1000 --seconds 20
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from _server import Server, check_specs_unique, health_specs, machine, webhook_specs


def row(sync: str, name: str, r: dict[str, Any], share: str = "") -> str:
    return (f"{sync:>6} {name:<22} {r['rps']:>9,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['max_ms']:>8.1f} {share:>10} {r['cpu_ms']:>10.3f} {1000 / r['cpu_ms']:>11,.0f}"
            f"  {r['statuses']}" + (f" errors={r['errors']}" if r["errors"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    parser.add_argument("--sync", default="normal,full", help="normal, full or normal,full")
    args = parser.parse_args()
    check_specs_unique()
    print(f"intake: {machine()}; uvicorn loop={args.loop} http={args.http}; "
          f"load average {os.getloadavg()[0]:.1f}; "
          f"{args.requests:,} requests at concurrency {args.concurrency}; "
          f"open loop {args.rate:,.0f}/s for {args.seconds:g} s")
    print(f"{'sync':>6} {'phase':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'of ceiling':>10} {'cpu ms/req':>10} {'cpu-bound/s':>11}  statuses")
    with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp) / "bare.db", bare=True,
                                                      loop=args.loop, http=args.http) as bare:
        r = bare.load(health_specs(), requests=args.requests, concurrency=args.concurrency)
        print(row("-", "bare ASGI app", r))
    for sync in args.sync.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            with Server(db, sync_full=sync == "full", loop=args.loop, http=args.http) as server:
                ceiling = server.load(health_specs(), requests=args.requests,
                                      concurrency=args.concurrency)
                hooks = server.load(webhook_specs(), requests=args.requests,
                                    concurrency=args.concurrency, uid_base=1)
                fixed = server.load(webhook_specs(), rate=args.rate, seconds=args.seconds,
                                    connections=args.concurrency, uid_base=10**11)
                rss, peak = server.rss_mb()
            stored = sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]
        share = f"{hooks['rps'] / ceiling['rps']:.0%}/{ceiling['cpu_ms'] / hooks['cpu_ms']:.0%}"
        print(row(sync, "/health (ceiling)", ceiling))
        print(row(sync, "webhooks closed loop", hooks, share))
        print(row(sync, f"webhooks at {args.rate:,.0f}/s", fixed))
        sent = hooks["requests"] + fixed["requests"]
        print(f"{sync:>6} stored events {stored:,} for {sent:,} acknowledged webhooks; "
              f"server RSS {rss:.0f} MB (peak {peak:.0f} MB)")


if __name__ == "__main__":
    main()
