"""Memory: the service's resident memory under sustained webhook load, round after round.

The service (as in bench_intake.py) takes ``--rounds`` rounds of ``--requests`` new webhooks
each; after every round its RSS, peak RSS and the number of stored events are printed. Flat
RSS while the stored count grows means nothing per event is kept in memory.

    .venv/bin/python bench/bench_memory.py                     # 10 rounds of 10,000
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from _server import Server, check_specs_unique, machine, webhook_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    check_specs_unique()
    print(f"memory: {machine()}; {args.rounds} rounds of {args.requests:,} webhooks at "
          f"concurrency {args.concurrency}")
    print(f"{'round':>5} {'stored':>9} {'req/s':>7} {'RSS MB':>7} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "memory.db"
        with Server(db) as server:
            rss, peak = server.rss_mb()
            print(f"{0:>5} {0:>9,} {'':>7} {rss:>7.0f} {peak:>8.0f}", flush=True)
            for n in range(1, args.rounds + 1):
                r = server.load(webhook_specs(), requests=args.requests,
                                concurrency=args.concurrency, uid_base=n * 10**9)
                rss, peak = server.rss_mb()
                with sqlite3.connect(db) as conn:
                    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
                print(f"{n:>5} {stored:>9,} {r['rps']:>7,.0f} {rss:>7.0f} {peak:>8.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
