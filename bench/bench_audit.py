"""Reading incidents and the audit log at size: 1,000,000 audit records, 100,000 incidents
(prints a table; not a test).

    .venv/bin/python bench/bench_audit.py [--records N] [--incidents N] [--db PATH]

Times what the dashboard does on every page: the incidents of one resource (newest 50),
one incident's timeline (its audit records, its actions, the incident), the incident list
filtered by state and age, a /metrics scrape once it has caught up, and, for scale, one full
verification of the chain. Goal: under 50 ms for the list and the timeline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _benchdata import fill

from engine.runtime.metrics import Metrics
from engine.store import actions, audit, incidents, reporting
from engine.store import metrics as metrics_store
from engine.store.audit import verify_chain
from engine.store.db import Database

RESOURCES = 1000


def timed(func: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median and worst of ``runs`` calls, in ms."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-audit-")
    db = Database(args.db or Path(folder) / "bench.db")
    started = time.perf_counter()
    fill(db, incidents=args.incidents, records=args.records, resources=RESOURCES)
    print(f"generated {args.records:,} audit records and {args.incidents:,} incidents in "
          f"{time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    while True:  # the first scrapes catch up, a batch at a time
        head = audit.head(db)
        metrics_store.refresh(db)
        cursor = db.query("SELECT last FROM metric_cursors WHERE name = 'audit'")
        if not head or (cursor and cursor[0]["last"] >= head[0]):
            break
    print(f"metrics caught up with the log in {time.perf_counter() - started:.1f} s")

    middle = f"inc_{args.incidents // 2:09d}"
    registry = Metrics(lambda: db)
    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("incidents of one resource (newest 50)",
         lambda: incidents.list_incidents(db, resource="pl_417", limit=50), 200),
        ("one incident's timeline (audit + actions + incident)",
         lambda: (incidents.get(db, middle),
                  audit.list_records(db, incident_id=middle, limit=500),
                  actions.for_incident(db, middle)), 200),
        ("incidents resolved, last 24 h (newest 200)",
         lambda: incidents.list_incidents(db, state="resolved",
                                     since_ms=1_740_000_000_000 + 86_400_000 * 0, limit=200),
         100),
        ("24 h charts (opened by source, closed by state)",
         lambda: (reporting.failures_over_time(db, since_ms=1_740_000_000_000,
                                               bucket_ms=3_600_000)), 20),
        ("/metrics scrape (caught up)", registry.render, 50),
        ("verify the whole chain", lambda: verify_chain(db), 1),
    ]
    print(f"\n| {'query':<55} | {'median ms':>9} | {'max ms':>8} |")
    print(f"|{'-' * 57}|{'-' * 11}|{'-' * 10}|")
    for name, func, runs in cases:
        median, worst = timed(func, runs)
        print(f"| {name:<55} | {median:>9.2f} | {worst:>8.2f} |")
    db.close()


if __name__ == "__main__":
    main()
