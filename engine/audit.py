"""The tamper-evident audit log: canonical encoding, hash chain, verification.

Each record's ``hash`` is SHA-256 over the canonical encoding (sorted-key, compact JSON) of
the record without its ``hash`` and including ``prev_hash``, the hash of the record before it
(:data:`GENESIS` for the first). Editing, inserting or deleting a record anywhere breaks the
chain from that record on, and :func:`verify_records` names the first record that does not fit.
The table itself (engine/store/audit.py, with ``verify_chain`` over the stored log) refuses
UPDATE and DELETE with SQLite triggers; the chain catches what is done behind the engine's back
(a dropped trigger, another tool).

Every record has a kind from :data:`AuditKind`, the log's whole vocabulary: the store refuses
any other (:class:`~engine.errors.UnknownAuditKind`), so a filter by kind (the dashboard's,
``remediator audit list --kind``) can offer every kind there is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import msgspec

from engine.errors import UnknownAuditKind

__all__ = [
    "GENESIS",
    "KINDS",
    "AuditKind",
    "AuditRecord",
    "VerifyResult",
    "canonical",
    "check_kind",
    "record_hash",
    "verify_links",
    "verify_records",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""

AuditKind = Literal[
    # an event's way through the pipeline
    "received",          # claimed from the inbox (its claim count)
    "enriched",          # the cloud's look-ups about it, and what they found
    "matched",           # the rules that matched, and every rule tried
    "no_match",          # no rule matched: every rule tried, and why not
    "incident",          # the incident it opened or joined
    "repeat",            # an unmatched failure joined its escalated incident again
    "guard",             # one guard's decision (engine/guards.py)
    "rca",               # a root-cause analysis and the history it saw
    # an action's way
    "action_planned",    # a row rendered and stored (dry-run: what it would do)
    "action_started",    # the intent, committed before the cloud call
    "precheck",          # what the target's state said before the call: act, skip, error
    "action_succeeded",  # the call's outcome (or what reconciliation found done)
    "action_failed",     # a failed call: retried later, or given up
    "action_cancelled",  # a pending row cancelled when its incident closed
    "verification",      # a probe started, answered, or the attempt failed
    # an incident's end
    "resolution",        # closed as resolved or ignored, or an event that closes none
    "escalation",        # closed as escalated: a person looks at it
    # an operator's hand, and the engine's own housekeeping
    "approval",          # approved, rejected, or expired
    "acknowledged",      # a person took the incident on (engine/runtime/operators.py)
    "assignment",        # an incident assigned to someone, or to nobody
    "note",              # a person's note on an incident
    "rerun",             # a person re-ran an incident's rule: the incident it opened, or why not
    "pause",             # actions paused
    "resume",            # actions resumed
    "breaker",           # a circuit breaker opened, or reset by hand
    "silence",           # a silence created, or expired early by hand (engine/silences.py)
    "parked",            # an event set aside (engine/runtime/deadletter.py)
    "replayed",          # a parked event put back by hand
    "poll",              # a poller's failed look-up (engine/runtime/pollers.py)
    "notification",      # an incident's state announced, or its announcement failed
    "playbooks_reload",  # the playbooks loaded again, or refused
]
"""Every kind of record the engine writes, one comment each."""

KINDS: tuple[AuditKind, ...] = get_args(AuditKind)
"""The kinds in the order above (for filters and their help)."""


def check_kind(kind: str) -> AuditKind:
    """``kind`` if the log has it; raises :class:`~engine.errors.UnknownAuditKind` otherwise (a
    record of a kind no filter knows would be invisible to them)."""
    if kind not in KINDS:
        raise UnknownAuditKind(f"unknown audit kind {kind!r}: add it to engine.audit.AuditKind "
                               "(with a comment) before writing it")
    return kind  # type: ignore[return-value]


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


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The outcome of :func:`verify_chain`: ``ok``, how many records were checked, and the
    first bad record (its ``seq``) with the reason when not ok. ``pending`` records are
    written but not linked into the chain yet (PostgreSQL: the leader links them within a
    second or so), the oldest written ``pending_age_s`` ago: a lag, not a break (only shown
    when there are some)."""

    ok: bool
    checked: int
    bad_seq: int | None
    reason: str
    pending: int = 0
    pending_age_s: float = 0.0


def canonical(body: Mapping[str, Any]) -> bytes:
    """The one byte encoding that is hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical encoding of a record's body."""
    return hashlib.sha256(canonical(body)).hexdigest()


def verify_records(
    records: Iterable[AuditRecord], head: tuple[int, str] | None = None
) -> VerifyResult:
    """Check a chain given in ``seq`` order (each record's chain position is its ``seq``); see
    :func:`verify_links`."""
    return verify_links(((record.seq, record) for record in records), head)


def verify_links(
    links: Iterable[tuple[int, AuditRecord]], head: tuple[int, str] | None = None
) -> VerifyResult:
    """Check a chain given as (chain position, record) in position order; ``head`` is the
    (seq, hash) of the last record the store linked.

    A record fails when its position is not the next one (a record was deleted or inserted),
    its ``prev_hash`` is not the hash of the record before it, or its own hash does not match
    its content (it was edited). A chain whose last record is not ``head`` lost its tail. A
    record is named by its ``seq``; on SQLite its position is its ``seq``, on PostgreSQL the
    position the leader gave it (engine/store/audit.py).
    """
    expected, prev, prev_seq, checked = 1, GENESIS, 0, 0
    for position, record in links:
        if position != expected:
            at = "seq" if position == record.seq else "chain position"
            return _bad(record, checked, f"expected {at} {expected}: "
                                         "a record was deleted or inserted")
        if record.prev_hash != prev:
            return _bad(record, checked, "prev_hash does not match the hash of record "
                                         f"{prev_seq}")
        if record_hash(record.body()) != record.hash:
            return _bad(record, checked, "hash does not match its content: it was edited")
        prev, prev_seq, expected, checked = record.hash, record.seq, expected + 1, checked + 1
    if head is not None and head != (prev_seq, prev):
        return VerifyResult(ok=False, checked=checked, bad_seq=head[0],
                            reason=f"record {head[0]}: missing: the log ends at record "
                                   f"{prev_seq}")
    return VerifyResult(ok=True, checked=checked, bad_seq=None, reason="")


def _bad(record: AuditRecord, checked: int, why: str) -> VerifyResult:
    return VerifyResult(ok=False, checked=checked, bad_seq=record.seq,
                        reason=f"record {record.seq}: {why}")
