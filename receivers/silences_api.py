"""``/api/silences`` (admin keys only): list, create and expire silences (engine/silences.py).

``GET /api/silences`` lists those not yet ended (``?state=expired``: the ended ones, most
recent first); ``POST`` creates one from ``{"matchers", "comment", "duration" | "ends_at",
"starts_at"?}`` (the author is the authenticated caller's name, as approvals record it) and
answers 201 with it; ``DELETE /api/silences/{id}`` expires it now (404 unknown, 409 already
ended). Matchers are objects (``{"name", "op", "value"}``) or amtool's text
(``"resource=~pl_finance_.*"``). A browser from another site is refused before these run, as
on every route that changes state (receivers/csrf.py).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from engine import silences
from engine.rules.silences import MAX_MATCHERS, MatcherSpec
from engine.store.db import Database
from receivers.api import BadRequest, _now, _who
from receivers.auth import admin_guard

__all__ = ["SilenceRequest", "silences_router"]

LISTED = 500
"""Silences a list answers at most."""


class SilenceRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/silences``: matchers, why, and how long (``duration`` from the start, or
    ``ends_at``); ``starts_at`` (default now) for a window that begins later."""

    matchers: Annotated[list[MatcherSpec | str], msgspec.Meta(max_length=MAX_MATCHERS)]
    comment: Annotated[str, msgspec.Meta(max_length=silences.MAX_COMMENT)]
    duration: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    ends_at: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    starts_at: Annotated[str, msgspec.Meta(max_length=40)] | None = None


def _refused(exc: silences.SilenceError) -> Response[dict[str, Any]]:
    error = {400: "bad_request", 404: "not_found", 409: "conflict"}[exc.status]
    return Response({"error": error, "detail": str(exc)}, status_code=exc.status)


@get("/", sync_to_thread=True, tags=["silences"])
def list_silences(request: Request[Any, Any, Any],
                  db: NamedDependency[Database]) -> dict[str, Any]:
    """The silences not yet ended (active and pending), ending soonest first, or with
    ``?state=expired`` the ended ones, most recently ended first."""
    state = request.query_params.get("state")
    if state not in (None, "active", "expired"):
        raise BadRequest(f"state: expected active or expired; got {state[:50]!r}")
    return {"items": silences.list_views(db, now=_now(request), expired=state == "expired",
                                         limit=LISTED)}


@post("/", tags=["silences"], status_code=201)
async def create_silence(request: Request[Any, Any, Any],
                         db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """Create a silence; 400 naming what is wrong, 409 when too many have not ended."""
    try:
        body = msgspec.convert(await request.json(), type=SilenceRequest)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"body: {exc}") from exc
    now, who = _now(request), _who(request)
    try:
        specs = silences.matcher_specs(body.matchers)
        starts, ends = silences.times(now, duration=body.duration, ends_at=body.ends_at,
                                      starts_at=body.starts_at)
        made = await anyio.to_thread.run_sync(functools.partial(
            silences.create, db, specs, author=who, comment=body.comment, starts=starts,
            ends=ends, now=now))
    except silences.SilenceError as exc:
        return _refused(exc)
    return Response(made, status_code=201)


@delete("/{silence_id:str}", sync_to_thread=True, tags=["silences"], status_code=200)
def expire_silence(request: Request[Any, Any, Any], silence_id: FromPath[str],
                   db: NamedDependency[Database]) -> Response[dict[str, Any]]:
    """Expire a silence now: what it held is remediated again from now on. 404 unknown,
    409 already ended."""
    try:
        return Response(silences.expire(db, silence_id, _who(request), now=_now(request)))
    except silences.SilenceError as exc:
        return _refused(exc)


def silences_router() -> Router:
    """``/api/silences``, behind the admin keys."""
    return Router(path="/api/silences", guards=[admin_guard],
                  route_handlers=[list_silences, create_silence, expire_silence])
