"""The normalized failure event that every stage of the pipeline shares.

A parser turns a sender's payload into ``ErrorEvent`` values; enrichment may later fill in
``error_code``, ``message`` and ``attributes`` (the event as received and as enriched are both
kept by the store). The struct is frozen: a stage that learns more makes a new one with
``msgspec.structs.replace``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from engine.text import patterns
from engine.text.patterns import TEXT_LIMIT, clip
from engine.text.redact import redact, redact_text

__all__ = [
    "KINDS",
    "SOURCES",
    "STATUSES",
    "ErrorEvent",
    "Kind",
    "Source",
    "Status",
    "fingerprint",
    "mask_message",
    "parse_severity",
]

Source = Literal["adf", "synapse", "functions", "databricks", "generic"]
Kind = Literal[
    "pipeline_run", "activity_run", "job_run", "task_run", "cluster", "library", "function", "alert"
]
Status = Literal["firing", "resolved", "info"]

SOURCES: tuple[str, ...] = ("adf", "synapse", "functions", "databricks", "generic")
KINDS: tuple[str, ...] = (
    "pipeline_run", "activity_run", "job_run", "task_run", "cluster", "library", "function", "alert"
)
STATUSES: tuple[str, ...] = ("firing", "resolved", "info")


class ErrorEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """One failure (or its resolution) as Remediator understands it, whatever sent it.

    Only ``firing`` events are ever remediated. ``dedup_key`` is the sender's idempotency
    key (docs/SENDERS.md); ``fingerprint`` groups the same failure across runs and days.
    ``message`` and ``failure_type`` hold at most ``TEXT_LIMIT`` (64 Ki) characters, cut
    with "…" (the stored payload keeps the whole text): matching, fingerprints and the
    root-cause analysis never read more.
    """

    source: Source
    kind: Kind
    status: Status
    dedup_key: str
    id: str = ""
    resource: str = ""
    resource_id: str = ""
    run_id: str = ""
    error_code: str = ""
    error_codes: tuple[str, ...] = ()
    message: str = ""
    failure_type: str = ""
    severity: int | None = None
    occurred_at: datetime | None = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        # Here, so that every event is bounded however it was made: parsed, enriched
        # (msgspec.structs.replace) or read back from the store (an event stored before the
        # bound existed, claimed again).
        if len(self.message) > TEXT_LIMIT:
            msgspec.structs.force_setattr(self, "message", clip(self.message))
        if len(self.failure_type) > TEXT_LIMIT:
            msgspec.structs.force_setattr(self, "failure_type", clip(self.failure_type))

    def with_fingerprint(self) -> ErrorEvent:
        """Return this event with its fingerprint computed from its own fields."""
        return msgspec.structs.replace(
            self,
            fingerprint=fingerprint(self.source, self.resource, self.error_code, self.message),
        )

    def redacted(self) -> ErrorEvent:
        """This event as it may be stored and shown: secrets in its message and attributes
        masked (:mod:`engine.text.redact`). Senders' text and the clouds' error answers both end up
        there."""
        return msgspec.structs.replace(
            self, message=redact_text(self.message), attributes=redact(self.attributes)
        )


# Order matters: the broad patterns (URLs, GUIDs, timestamps) go before bare numbers. RE2
# has no lookaround: the character before a date is matched and put back (a match ends in a
# digit, so this character was never part of the previous one), and a condition on what
# follows or on the whole match is checked in code.
_MASKS: tuple[tuple[patterns.Pattern, Any], ...] = (
    # query strings of URLs (SAS tokens, timestamps, request ids)
    (
        patterns.compile(rf"(https?://[^?'\"{patterns.SPACE}]+)\?[^'\"{patterns.SPACE}]*"),
        r"\1?<q>",
    ),
    # ISO timestamps and dates, with or without time and zone
    (
        patterns.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
        ),
        "<ts>",
    ),
    # date parts of file paths: /2025/03/14/ and yyyymmdd stamps inside names
    # (a digit ends the date, so "followed by / or a word boundary" is \b)
    (patterns.compile(r"/\d{4}/\d{1,2}(?:/\d{1,2})?\b"), "/<date>"),
    (
        patterns.compile(
            r"(^|[^0-9A-Za-z])((?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01]))(\d*)"
        ),
        lambda m: m[0] if m[3] else f"{m[1]}<date>",
    ),
    # GUIDs and long hex ids (request ids, instance ids, command ids)
    (patterns.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"), "<id>"),
    (patterns.compile(r"\b[0-9a-fA-F]{16,}\b"), "<id>"),
    # shorter hex ids (8+ digits mixing letters and digits): run ids, request ids
    (
        patterns.compile(r"\b[0-9a-f]{8,}\b"),
        lambda m: m[0] if m[0].isdigit() or m[0].isalpha() else "<id>",
    ),
    # Databricks cluster ids such as 0314-020004-k3x9wq2e
    (patterns.compile(r"\b\d{4}-\d{6}-[0-9a-z]{8}\b"), "<id>"),
    # any other number (run ids, counts, durations, line numbers)
    (patterns.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def mask_message(message: str) -> str:
    """Mask what changes from one occurrence of a failure to the next.

    GUIDs, run and cluster ids, numbers, timestamps, URL query strings and the date parts of
    file paths become placeholders, so that yesterday's and today's missing blob read alike.
    """
    text = message
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def fingerprint(source: str, resource: str, error_code: str, message: str) -> str:
    """A stable 16-hex-digit signature of a failure: same failure, same fingerprint."""
    basis = "\x1f".join((source, resource.lower(), error_code, mask_message(message)[:500]))
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


_SEV = patterns.compile(r"^(?:sev)?\s*([0-4])$", ignore_case=True)


def parse_severity(value: object) -> int | None:
    """``Sev0``..``Sev4`` or ``"0"``..``"4"`` (or an int) to 0..4; anything else to None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 4 else None
    if isinstance(value, str):
        m = _SEV.match(value.strip())
        return int(m.group(1)) if m else None
    return None


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
