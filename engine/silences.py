"""Silences (maintenance windows, in Alertmanager's sense): matchers on an event and its target
that hold remediation from when they start until they end.

An event that a silence matches opens its incident as usual; the ``silence`` guard
(engine/guards.py) then closes it ``ignored`` with the silence's id, author and comment: it
is recorded, not acted on. A silence expires by itself at its end; an admin may expire it
early. Creating and expiring are audited (``silence``) with who did it. Bounds: a comment of
at most :data:`MAX_COMMENT` characters, at most :data:`MAX_DURATION_S` long, at most
:data:`MAX_SILENCES` not yet ended; the matchers' bounds are in engine/rules/silences.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from engine.clock import from_ms, to_ms
from engine.events import ErrorEvent
from engine.rules.durations import parse_duration
from engine.rules.silences import (
    MatcherError,
    MatcherSpec,
    compile_matchers,
    matches,
    parse_matcher,
)
from engine.store import audit as audit_store
from engine.store import locks
from engine.store import silences as store
from engine.store.db import Database
from engine.store.ids import new_id

__all__ = ["MAX_COMMENT", "MAX_DURATION_S", "MAX_SILENCES", "SilenceError", "active",
           "create", "expire", "holding", "list_views", "matcher_specs", "matching", "times",
           "view"]

MAX_COMMENT = 1000
MAX_AUTHOR = 200
MAX_DURATION_S = 90 * 86400
"""A silence lasts at most 90 days: a longer one is a rule change, not a maintenance window."""
MAX_SILENCES = 1000
"""Silences not yet ended at one time: every planned remediation is checked against them."""


class SilenceError(ValueError):
    """A silence that cannot be created or expired; ``status`` says how the API answers
    (400 bad input, 404 unknown, 409 already expired or too many)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _iso(ms: int) -> str:
    return from_ms(ms).isoformat().replace("+00:00", "Z")


def matcher_specs(given: Sequence[MatcherSpec | str]) -> list[MatcherSpec]:
    """Matchers as specs, amtool's text (``resource=~pl_fin.*``) parsed; :class:`SilenceError`
    (400) names a bad one."""
    try:
        return [m if isinstance(m, MatcherSpec) else parse_matcher(m) for m in given]
    except MatcherError as exc:
        raise SilenceError(str(exc)) from None


def _time(name: str, value: str) -> datetime:
    """An ISO time (UTC if it names no zone)."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SilenceError(f"{name}: expected an ISO time, got {value[:50]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def times(now: datetime, *, duration: str | None, ends_at: str | None,
          starts_at: str | None) -> tuple[datetime | None, datetime]:
    """(starts, ends) as an operator gives them: exactly one of ``duration`` (from the start)
    and ``ends_at``; ``starts_at`` or now. :class:`SilenceError` (400) says what is wrong."""
    if (duration is None) == (ends_at is None):
        raise SilenceError("give exactly one of duration (e.g. 2h) and ends_at (an ISO time)")
    starts = _time("starts_at", starts_at) if starts_at else None
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise SilenceError(f"duration: {exc}") from None
        if seconds > MAX_DURATION_S:
            raise SilenceError(f"duration: a silence ends within {MAX_DURATION_S // 86400} days")
        return starts, (starts or now) + timedelta(seconds=seconds)
    assert ends_at is not None
    return starts, _time("ends_at", ends_at)


def view(row: store.SilenceRow, now_ms: int) -> dict[str, Any]:
    """A silence as the API, the CLI and the dashboard show it."""
    return {"id": row.id, "state": row.state(now_ms),
            "matchers": row.matchers,
            "text": ", ".join(str(MatcherSpec(**m)) for m in row.matchers),  # type: ignore[arg-type]
            "starts_at": _iso(row.starts_ms), "ends_at": _iso(row.ends_ms),
            "author": row.author, "comment": row.comment, "created_at": _iso(row.created_ms),
            "expired_by": row.expired_by or None,
            "expired_at": _iso(row.expired_ms) if row.expired_ms else None}


def create(db: Database, matchers: Sequence[MatcherSpec], *, author: str, comment: str,
           ends: datetime, now: datetime, starts: datetime | None = None) -> dict[str, Any]:
    """Store a silence from ``starts`` (default: now) until ``ends`` and audit it; returns its
    view. Raises :class:`SilenceError` for bad matchers, times, comment or author, or when
    :data:`MAX_SILENCES` have not ended."""
    try:
        compile_matchers(matchers)
    except MatcherError as exc:
        raise SilenceError(str(exc)) from None
    author, comment = author.strip(), comment.strip()
    if not author or len(author) > MAX_AUTHOR:
        raise SilenceError(f"author: 1 to {MAX_AUTHOR} characters")
    if not comment:
        raise SilenceError("comment: say why (the on-call engineer reads it)")
    if len(comment) > MAX_COMMENT:
        raise SilenceError(f"comment: at most {MAX_COMMENT} characters, got {len(comment)}")
    now_ms = to_ms(now)
    starts_ms, ends_ms = to_ms(starts) if starts else now_ms, to_ms(ends)
    if ends_ms <= max(starts_ms, now_ms):
        raise SilenceError(f"ends_at: {_iso(ends_ms)} is not after "
                           f"{'starts_at' if starts_ms > now_ms else 'now'} "
                           f"({_iso(max(starts_ms, now_ms))})")
    if ends_ms - now_ms > MAX_DURATION_S * 1000:
        raise SilenceError(f"ends_at: a silence ends within {MAX_DURATION_S // 86400} days")
    with db.batch():
        locks.hold(db, "silences")  # the cap: replicas creating at once count each other's
        if store.count_active(db, now_ms=now_ms) >= MAX_SILENCES:
            raise SilenceError(f"{MAX_SILENCES} silences have not ended: expire some first",
                               409)
        row = store.SilenceRow(id=new_id("sil"),
                               matchers=[msgspec.to_builtins(m) for m in matchers],
                               starts_ms=starts_ms, ends_ms=ends_ms, author=author,
                               comment=comment, created_ms=now_ms)
        store.insert(db, row)
        shown = view(row, now_ms)
        audit_store.append(db, "silence", ts=now, actor=author,
                           data={"decision": "created", "who": author, "silence": shown})
    return shown


def expire(db: Database, silence_id: str, who: str, *, now: datetime,
           reason: str = "") -> dict[str, Any]:
    """End a silence now (remediation resumes for what it held from now on) and audit who;
    returns its view. Raises :class:`SilenceError`: 404 unknown, 409 already ended."""
    now_ms = to_ms(now)
    with db.batch():
        row = store.get(db, silence_id)
        if row is None:
            raise SilenceError(f"unknown silence {silence_id}", 404)
        if not store.expire(db, silence_id, who, now_ms):
            raise SilenceError(f"silence {silence_id} already ended at {_iso(row.ends_ms)}", 409)
        after = store.get(db, silence_id)
        assert after is not None
        shown = view(after, now_ms)
        audit_store.append(db, "silence", ts=now, actor=who,
                           data={"decision": "expired", "who": who, "reason": reason[:500],
                                 "silence": shown})
    return shown


def list_views(db: Database, *, now: datetime, expired: bool = False,
               limit: int = 500) -> list[dict[str, Any]]:
    """The silences not yet ended (or, ``expired``, the ended ones), as views."""
    now_ms = to_ms(now)
    return [view(row, now_ms) for row in store.list_silences(db, now_ms=now_ms, expired=expired,
                                                             limit=limit)]


def active(db: Database, *, now: datetime) -> list[store.SilenceRow]:
    """The silences in force at ``now`` (for ``simulate``)."""
    now_ms = to_ms(now)
    return [r for r in store.list_silences(db, now_ms=now_ms, limit=MAX_SILENCES)
            if r.state(now_ms) == "active"]


def matching(db: Database, event: ErrorEvent, target: str, *,
             now_ms: int) -> list[store.SilenceRow]:
    """The active silences whose matchers all hold for the event on ``target``."""
    return holding(store.list_silences(db, now_ms=now_ms, limit=MAX_SILENCES), event, target,
                   now_ms=now_ms)


def holding(rows: Sequence[store.SilenceRow], event: ErrorEvent, target: str, *,
            now_ms: int) -> list[store.SilenceRow]:
    """Those of ``rows`` active at ``now_ms`` whose matchers all hold for the event on
    ``target``. A stored matcher that no longer compiles (written by another version)
    matches nothing."""
    found = []
    for row in rows:
        if row.state(now_ms) != "active":
            continue
        try:
            compiled = compile_matchers([msgspec.convert(m, MatcherSpec) for m in row.matchers])
        except (MatcherError, msgspec.ValidationError):
            continue
        if matches(compiled, event, target):
            found.append(row)
    return found
