"""A bounded soak: ``remediator serve --live`` against the sandbox at a steady mixed load with
cloud faults injected, memory and latency sampled to a CSV.

    .venv/bin/python scripts/soak.py --minutes 60 --csv soak.csv [--rate 10] [--every 5]

Load (``--rate`` requests per second, spread over loaders): new ADF failures (one in four on
one of 20 recurring pipelines, so incidents are joined and targets locked), exact re-deliveries
(duplicates), malformed JSON, wrong keys, and reads of ``/api/events``. Every 30 s a fault is
scripted in the sandbox in turn: createRun 503 x3, queryActivityruns 429 with Retry-After,
getPipelineRun hanging 3 s, createRun 500, getPipelineRun 404.

Every ``--every`` seconds one CSV row: elapsed seconds, RSS of the serve process (MiB),
requests and 5xx answers in the window, intake latency p50/p95/max (ms), events stored,
events pending, createRun calls so far. It stops by itself after ``--minutes``, then checks
that every acknowledged event is stored and nothing is left pending; prints a JSON summary.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.store import inbox
from engine.store.db import Database
from sandbox.server import start_sandbox
from scripts._harness import (
    ADMIN_KEY,
    RECEIVER_KEY,
    adf_failure,
    make_serve,
    rerun_calls,
)

FAULTS: list[dict[str, Any]] = [
    {"operation": "adf.createRun", "status": 503, "times": 3},
    {"operation": "adf.queryActivityruns", "status": 429, "retry_after": 2, "times": 2},
    {"operation": "adf.getPipelineRun", "hang": 3, "times": 1},
    {"operation": "adf.createRun", "status": 500, "times": 1},
    {"operation": "adf.getPipelineRun", "status": 404, "times": 1},
]


class Window:
    """Latencies and statuses since the last sample (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.requests = 0
        self.errors_5xx = 0
        self.acked: set[str] = set()

    def add(self, ms: float, status: int, event_id: str | None) -> None:
        with self.lock:
            self.requests += 1
            if status >= 500:
                self.errors_5xx += 1
            if event_id is not None:
                self.latencies.append(ms)
                self.acked.add(event_id)

    def take(self) -> tuple[int, int, list[float]]:
        with self.lock:
            out = (self.requests, self.errors_5xx, self.latencies)
            self.requests, self.errors_5xx, self.latencies = 0, 0, []
            return out


def _one(client: httpx.Client, url: str, rng: random.Random, counter: Any,
         recent: list[dict[str, Any]], window: Window, sandbox: Any) -> None:
    roll = rng.random()
    headers = {"x-api-key": RECEIVER_KEY}
    started = time.perf_counter()
    event_id = None
    if roll < 0.55:
        tag = f"{next(counter):07d}"
        pipeline = f"pl_recurring_{rng.randrange(20)}" if rng.random() < 0.25 else None
        payload = adf_failure(tag, pipeline=pipeline, sandbox=sandbox)
        recent.append(payload)
        del recent[:-50]
        response = client.post(f"{url}/azure-monitor", json=payload, headers=headers)
    elif roll < 0.75 and recent:
        response = client.post(f"{url}/azure-monitor", json=rng.choice(recent), headers=headers)
    elif roll < 0.82:
        response = client.post(f"{url}/azure-monitor", content=b'{"schemaId": [', headers=headers)
    elif roll < 0.89:
        response = client.post(f"{url}/azure-monitor", json={}, headers={"x-api-key": "wrong"})
    else:
        response = client.get(f"{url}/api/events", params={"limit": "20"},
                              headers={"x-api-key": ADMIN_KEY})
    ms = (time.perf_counter() - started) * 1000
    if response.status_code == 202:
        event_id = response.json()["event_id"]
    window.add(ms, response.status_code, event_id)


def soak(minutes: float, csv_path: Path, workdir: Path, *, rate: float = 10.0,
         every_s: float = 5.0, seed: int = 7) -> dict[str, Any]:
    sandbox = start_sandbox(workdir=workdir / "sandbox")
    serve = make_serve(workdir, sandbox, lease_s=30)
    window = Window()
    stop = threading.Event()
    counter = itertools.count()
    loaders = 4
    failures: list[str] = []

    def load(index: int) -> None:
        rng = random.Random(seed + index)
        recent: list[dict[str, Any]] = []
        gap = loaders / rate
        with httpx.Client(timeout=30) as client:
            next_at = time.monotonic()
            while not stop.is_set():
                try:
                    _one(client, serve.url, rng, counter, recent, window, sandbox)
                except httpx.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                next_at += gap
                stop.wait(max(0.0, next_at - time.monotonic()))

    serve.start()
    db = Database(workdir / "remediator.db")
    started = time.monotonic()
    end = started + minutes * 60
    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(loaders)]
    for thread in threads:
        thread.start()
    faults = itertools.cycle(FAULTS)
    next_fault = started + 30
    rows = 0
    peak_rss = 0
    try:
        with csv_path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["elapsed_s", "rss_mib", "requests", "status_5xx", "p50_ms",
                             "p95_ms", "max_ms", "events", "pending", "create_runs"])
            while time.monotonic() < end:
                stop.wait(every_s)
                if time.monotonic() >= next_fault:
                    fault = next(faults)
                    sandbox.script("adf", fault["operation"],
                                   **{k: v for k, v in fault.items() if k != "operation"})
                    next_fault += 30
                requests, errors, latencies = window.take()
                lat = sorted(latencies) or [0.0]
                rss = serve.rss_kib() / 1024
                peak_rss = max(peak_rss, rss)
                events = db.query("SELECT count(*) AS n FROM events")[0]["n"]
                writer.writerow([
                    round(time.monotonic() - started, 1), round(rss, 1), requests, errors,
                    round(statistics.median(lat), 1), round(lat[int(0.95 * (len(lat) - 1))], 1),
                    round(lat[-1], 1), events, inbox.count_pending(db), len(rerun_calls(sandbox)),
                ])
                out.flush()
                rows += 1
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        deadline = time.monotonic() + 120
        while inbox.count_pending(db) and time.monotonic() < deadline:
            time.sleep(0.5)
        missing = [eid for eid in window.acked if inbox.get(db, eid) is None]
        pending = inbox.count_pending(db)
        health = httpx.get(f"{serve.url}/health").status_code
    finally:
        stop.set()
        serve.stop()
        db.close()
        sandbox.stop()
    return {"minutes": minutes, "samples": rows, "acknowledged": len(window.acked),
            "missing": len(missing), "pending_after_drain": pending, "health": health,
            "peak_rss_mib": round(peak_rss, 1), "client_errors": failures[:10],
            "client_error_count": len(failures),
            "ok": not missing and pending == 0 and health == 200 and not failures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--csv", type=Path, default=Path("soak.csv"))
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        summary = soak(args.minutes, args.csv, args.workdir or Path(tmp), rate=args.rate,
                       every_s=args.every)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
