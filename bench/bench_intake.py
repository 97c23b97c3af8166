"""Intake throughput and latency of the service against its own ceiling (``/health``).

The service (``create_app``, durable SQLite inbox, API key auth, JSON logs at info) runs under
uvicorn (uvloop + httptools, one process) pinned to core 0; the load generator runs on core 1.
For each durability setting: ``/health`` closed loop (the ceiling: same server, no storage),
webhooks closed loop (the eight real-format samples, every one a new event), then webhooks
open loop at a fixed offered rate (latency measured from when each request was due).

Closed loops are driven by wrk (C, Debian's package; a Lua script gives each request a fresh
uid) when it is installed, else by bench/_load.py (``--client python``); the open loop always by
bench/_load.py (wrk has no fixed-rate mode). After each setting the inbox is counted: every
acknowledged webhook must be a stored event.

    .venv/bin/python bench/bench_intake.py                   # ~1 min
    .venv/bin/python bench/bench_intake.py --seconds 20 --rate 1000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from _server import Server, check_specs_unique, health_specs, machine, webhook_specs


def row(sync: str, name: str, r: dict[str, Any], share: str = "") -> str:
    return (f"{sync:>6} {name:<22} {r['rps']:>9,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['max_ms']:>8.1f} {share:>10} {r['cpu_ms']:>10.3f} {1000 / r['cpu_ms']:>11,.0f}"
            f"  {r['statuses']}" + (f" errors={r['errors']}" if r["errors"] else ""))


def closed(server: Server, specs: list[tuple[str, dict[str, str], str]], args: Any,
           uid_base: int = 0) -> dict[str, Any]:
    """A closed loop of ``args.concurrency`` connections by the chosen client."""
    if args.client == "wrk":
        return server.wrk(specs, seconds=args.closed_seconds, connections=args.concurrency,
                          uid_base=uid_base)
    return server.load(specs, requests=args.requests, concurrency=args.concurrency,
                       uid_base=uid_base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--client", default="wrk" if shutil.which("wrk") else "python",
                        choices=["wrk", "python"], help="the closed loops' load generator")
    parser.add_argument("--closed-seconds", type=float, default=10.0,
                        help="length of each closed loop under wrk")
    parser.add_argument("--requests", type=int, default=30_000,
                        help="requests of each closed loop under the python client")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    parser.add_argument("--sync", default="normal,full", help="normal, full or normal,full")
    args = parser.parse_args()
    check_specs_unique()
    length = (f"{args.closed_seconds:g} s" if args.client == "wrk"
              else f"{args.requests:,} requests")
    print(f"intake: {machine()}; uvicorn loop={args.loop} http={args.http}; "
          f"load average {os.getloadavg()[0]:.1f}; closed loops by {args.client} at "
          f"concurrency {args.concurrency} ({length}); "
          f"open loop {args.rate:,.0f}/s for {args.seconds:g} s")
    print(f"{'sync':>6} {'phase':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'of ceiling':>10} {'cpu ms/req':>10} {'cpu-bound/s':>11}  statuses")
    with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp) / "bare.db", bare=True,
                                                      loop=args.loop, http=args.http) as bare:
        print(row("-", "bare ASGI app", closed(bare, health_specs(), args)))
    for sync in args.sync.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            with Server(db, sync_full=sync == "full", loop=args.loop, http=args.http) as server:
                ceiling = closed(server, health_specs(), args)
                hooks = closed(server, webhook_specs(), args, uid_base=1)
                fixed = server.load(webhook_specs(), rate=args.rate, seconds=args.seconds,
                                    connections=args.concurrency, uid_base=10**11)
                rss, peak = server.rss_mb()
            stored = sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]
        share = f"{hooks['rps'] / ceiling['rps']:.0%}/{ceiling['cpu_ms'] / hooks['cpu_ms']:.0%}"
        print(row(sync, "/health (ceiling)", ceiling))
        print(row(sync, "webhooks closed loop", hooks, share))
        print(row(sync, f"webhooks at {args.rate:,.0f}/s", fixed))
        acked = _acknowledged(hooks) + _acknowledged(fixed)
        # wrk stops with requests in flight: the server may store a few it never counted.
        verdict = "every one stored" if stored >= acked else f"{acked - stored:,} MISSING"
        print(f"{sync:>6} {acked:,} webhooks acknowledged, {stored:,} events stored: {verdict}; "
              f"server RSS {rss:.0f} MB (peak {peak:.0f} MB)")


def _acknowledged(r: dict[str, Any]) -> int:
    return r["statuses"].get("202", 0) + r["statuses"].get("2xx", 0)


if __name__ == "__main__":
    main()
