"""The tamper-evident audit log: canonical encoding, hash chain, verification.

Each record's ``hash`` is SHA-256 over the canonical encoding (sorted-key, compact JSON) of
the record without its ``hash`` and including ``prev_hash``, the hash of the record before it
(:data:`GENESIS` for the first). Editing, inserting or deleting a record anywhere breaks the
chain from that record on, and :func:`verify_chain` names the first record that does not fit.
The table itself (engine/store/audit.py) refuses UPDATE and DELETE with SQLite triggers; the
chain catches what is done behind the engine's back (a dropped trigger, another tool).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from engine.store import Database

__all__ = [
    "GENESIS",
    "KINDS",
    "AuditRecord",
    "VerifyResult",
    "canonical",
    "record_hash",
    "verify_chain",
    "verify_records",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""

KINDS: tuple[str, ...] = (
    "received", "enriched", "matched", "no_match", "incident", "guard", "action_planned",
    "action_started", "action_succeeded", "action_failed", "action_cancelled",
    "verification", "rca", "approval", "resolution", "escalation", "pause", "resume",
    "breaker", "parked", "replayed", "precheck",
)
"""Every kind of record the engine writes."""


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the audit log, as stored."""

    seq: int
    ts: str
    incident_id: str
    event_id: str
    kind: str
    actor: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The fields the hash covers: everything but ``hash``."""
        return {
            "seq": self.seq, "ts": self.ts, "incident_id": self.incident_id,
            "event_id": self.event_id, "kind": self.kind, "actor": self.actor,
            "data": self.data, "prev_hash": self.prev_hash,
        }


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`verify_chain`: ``ok``, how many records were checked, and the
    first bad record (its ``seq``) with the reason when not ok."""

    ok: bool
    checked: int
    bad_seq: int | None = None
    reason: str = ""


def canonical(body: Mapping[str, Any]) -> bytes:
    """The one byte encoding that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical encoding of a record's body."""
    return hashlib.sha256(canonical(body)).hexdigest()


def verify_records(
    records: Iterable[AuditRecord], head: tuple[int, str] | None = None
) -> VerifyResult:
    """Check a chain given in ``seq`` order; ``head`` is the (seq, hash) the store last wrote.

    A record fails when its ``seq`` is not the next one (a record was deleted or inserted),
    its ``prev_hash`` is not the hash of the record before it, or its own hash does not match
    its content (it was edited). A chain whose last record is not ``head`` lost its tail.
    """
    expected_seq, prev, checked = 1, GENESIS, 0
    for record in records:
        if record.seq != expected_seq:
            return VerifyResult(
                ok=False, checked=checked, bad_seq=record.seq,
                reason=f"record {record.seq}: expected seq {expected_seq}: "
                       "a record was deleted or inserted",
            )
        if record.prev_hash != prev:
            return VerifyResult(
                ok=False, checked=checked, bad_seq=record.seq,
                reason=f"record {record.seq}: prev_hash does not match the hash of record "
                       f"{record.seq - 1}",
            )
        if record_hash(record.body()) != record.hash:
            return VerifyResult(
                ok=False, checked=checked, bad_seq=record.seq,
                reason=f"record {record.seq}: hash does not match its content: it was edited",
            )
        prev, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
    if head is not None and head != (expected_seq - 1, prev):
        return VerifyResult(
            ok=False, checked=checked, bad_seq=head[0],
            reason=f"record {head[0]}: missing: the log ends at record {expected_seq - 1}",
        )
    return VerifyResult(ok=True, checked=checked)


def verify_chain(db: Database) -> VerifyResult:
    """Verify the whole audit log of ``db``; see :func:`verify_records`."""
    # Imported here: the store module imports this one for the encoding.
    from engine.store import audit as audit_store

    return verify_records(audit_store.iter_records(db), audit_store.head(db))
