"""Where a webhook's CPU goes: each intake stage timed in-process on the eight samples.

No HTTP, one thread: decode, normalize, redact (payload; events' messages and attributes),
encode the raw payload, and the insert + commit of ``intake.store`` (one transaction per
webhook) against a fresh SQLite file. Microseconds per webhook, median of ``--repeat`` runs.

    .venv/bin/python bench/bench_stages.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _server import machine, webhook_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from engine.redact import redact, redact_text
    from engine.store import Database
    from receivers import intake

    specs = webhook_specs()
    n = args.webhooks
    bodies = [(specs[i % len(specs)][0][1:],
               specs[i % len(specs)][2].replace("~UID~", f"{i:012d}").encode())
              for i in range(n)]
    payloads = [intake.decode(b) for _, b in bodies]
    events = [intake.normalize(ep, p) for (ep, _), p in zip(bodies, payloads, strict=True)]

    def stage(fn: Callable[[], Any]) -> float:
        runs = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - began) / n * 1e6)
        return statistics.median(runs)

    print(f"stages: {machine()}; {n:,} webhooks, median of {args.repeat}")
    rows = [
        ("decode (msgspec + depth check)", lambda: [intake.decode(b) for _, b in bodies]),
        ("normalize (parsers)", lambda: [intake.normalize(ep, p) for (ep, _), p in
                                         zip(bodies, payloads, strict=True)]),
        ("redact payload", lambda: [redact(p) for p in payloads]),
        ("redact events", lambda: [[(redact_text(e.message), redact(e.attributes)) for e in es]
                                   for es in events]),
        ("raw json.dumps", lambda: [json.dumps(p, separators=(",", ":"), ensure_ascii=False)
                                    for p in payloads]),
    ]
    try:
        import msgspec
        enc = msgspec.json.Encoder()
        rows.append(("raw msgspec encode", lambda: [enc.encode(p) for p in payloads]))
    except ImportError:
        pass
    for name, fn in rows:
        print(f"{name:<34} {stage(fn):>9,.0f} µs/webhook")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "stages.db")
        counter = iter(range(10**9))

        def store() -> None:
            for (ep, _), es, p in zip(bodies, events, payloads, strict=True):
                k = next(counter)
                fresh = [e.__class__(**{**{f: getattr(e, f) for f in e.__struct_fields__},
                                        "dedup_key": f"{e.dedup_key}#{k}"}) for e in es]
                intake.store(db, ep, fresh, p)

        print(f"{'store (redact + insert + commit)':<34} {stage(store):>9,.0f} µs/webhook")
        db.close()


if __name__ == "__main__":
    main()
