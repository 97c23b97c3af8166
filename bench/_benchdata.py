"""Bulk synthetic data for the benchmarks (bench/): incidents and a valid audit chain, written
in a few large transactions. Never used by the service."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from engine.audit import GENESIS, record_hash

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["fill"]

_KINDS = ("received", "matched", "incident", "guard", "guard", "guard", "action_planned",
          "action_started", "action_succeeded", "resolution")


def fill(db: Database, *, incidents: int, records: int, resources: int,
         start_ms: int = 1_740_000_000_000, chunk: int = 50_000) -> None:
    """``incidents`` incidents over ``resources`` pipelines, and ``records`` audit records
    spread over them (a valid hash chain, continuing the existing one; SQLite, where a
    record's chain position is its seq)."""
    per = max(1, records // incidents)
    head = db.query("SELECT seq, hash FROM audit_head WHERE id = 1")
    seq, prev = (head[0]["seq"], head[0]["hash"]) if head else (0, GENESIS)
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO incidents (id, fingerprint, target, source, resource, state, "
            "rule_id, event_id, opened_ms, updated_ms, closed_ms) "
            "VALUES (?, ?, ?, 'adf', ?, 'resolved', 'bench-rule', ?, ?, ?, ?)",
            ((f"inc_{i:09d}", f"fp{i % 5000}", f"adf:pl_{i % resources}",
              f"pl_{i % resources}", f"evt_{i:09d}", start_ms + i * 1000, start_ms + i * 1000,
              start_ms + i * 1000 + 60_000)
             for i in range(incidents)),
        )
    written = 0
    while written < records:
        rows = []
        for n in range(written, min(records, written + chunk)):
            i = n // per % incidents
            seq += 1
            ts_ms = start_ms + i * 1000 + n % per
            kind = _KINDS[n % per % len(_KINDS)]
            data = {"resource": f"pl_{i % resources}", "n": n}
            body = {"seq": seq, "ts": f"{ts_ms}", "incident_id": f"inc_{i:09d}",
                    "event_id": f"evt_{i:09d}", "kind": kind, "actor": "bench", "data": data,
                    "prev_hash": prev}
            prev = record_hash(body)
            rows.append((seq, body["ts"], ts_ms, body["incident_id"], body["event_id"], kind,
                         "bench", data["resource"],
                         json.dumps(data, sort_keys=True, separators=(",", ":")),
                         body["prev_hash"], prev, seq))
        with db.write() as conn:
            conn.executemany(
                "INSERT INTO audit (seq, ts, ts_ms, incident_id, event_id, kind, actor, "
                "resource, data, prev_hash, hash, chain) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows)
            conn.execute(
                "INSERT INTO audit_head (id, seq, hash, chain) VALUES (1, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                "chain = excluded.chain", (seq, prev, seq))
        written += len(rows)
