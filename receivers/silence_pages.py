"""The dashboard's silences page (``/silences``, admins only): the silences not yet ended and
the recently ended ones, a form to add one and a button to expire each early.

The forms call :mod:`engine.silences` as ``/api/silences`` does; the author is the signed-in
user's name (basic auth's user name, as approvals record it). A form posted from another site
is refused before it gets here (receivers/csrf.py). A bad matcher, time or comment answers
the page again, 400, with the reason and what was typed.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect

from engine import silences
from engine.config import Settings
from engine.rules.silences import MAX_MATCHERS
from engine.store.db import Database
from receivers.auth import admin_guard
from receivers.dashboard import PAGES, _caller, _engine_now, _environment, _mode, _page

__all__ = ["SilenceForm", "silence_router"]

ENDED_SHOWN = 50
"""The most recently ended silences listed under the active ones."""


class SilenceForm(msgspec.Struct, kw_only=True):
    """The add form: matchers one per line, how long, why."""

    matchers: str = ""
    duration: str = "2h"
    comment: str = ""


def silence_router() -> Router:
    """``/silences``: the page, the add form and the expire buttons."""
    env = _environment()

    def page(request: Request[Any, Any, Any], db: Database, settings: Settings, *,
             status: int = 200, error: str = "", form: SilenceForm | None = None,
             done: str = "") -> Response[str]:
        now = _engine_now(request)
        current = silences.list_views(db, now=now)
        ended = silences.list_views(db, now=now, expired=True, limit=ENDED_SHOWN)
        known = {s["id"] for s in current + ended}  # never echo arbitrary query text
        return _page(env, "silences.html.j2", status, title="Silences",
                     mode=_mode(db, settings), error=error, done=done if done in known else "",
                     form=form or SilenceForm(), current=current, ended=ended)

    @get("/", sync_to_thread=True, include_in_schema=False)
    def silences_page(request: Request[Any, Any, Any], db: NamedDependency[Database],
                      settings: NamedDependency[Settings],
                      done: FromQuery[str | None] = None) -> Response[str]:
        return page(request, db, settings, done=(done or "")[:100])

    @post("/", sync_to_thread=True, include_in_schema=False)
    def add(request: Request[Any, Any, Any], db: NamedDependency[Database],
            settings: NamedDependency[Settings], data: URLEncodedBody[SilenceForm]) -> Any:
        lines = [line.strip() for line in data.matchers[:20_000].splitlines() if line.strip()]
        now = _engine_now(request)
        try:
            if len(lines) > MAX_MATCHERS:
                raise silences.SilenceError(f"a silence has at most {MAX_MATCHERS} matchers, "
                                            f"got {len(lines)}")
            starts, ends = silences.times(now, duration=data.duration.strip()[:20] or None,
                                          ends_at=None, starts_at=None)
            made = silences.create(db, silences.matcher_specs(lines), author=_caller(request),
                                   comment=data.comment[:silences.MAX_COMMENT + 1],
                                   starts=starts, ends=ends, now=now)
        except silences.SilenceError as exc:
            return page(request, db, settings, status=exc.status, error=str(exc), form=data)
        return Redirect(f"/silences?done={made['id']}", status_code=303)

    @post("/{silence_id:str}/expire", sync_to_thread=True, include_in_schema=False)
    def expire(request: Request[Any, Any, Any], silence_id: FromPath[str],
               db: NamedDependency[Database], settings: NamedDependency[Settings]) -> Any:
        try:
            silences.expire(db, silence_id, _caller(request), now=_engine_now(request))
        except silences.SilenceError as exc:
            return _page(env, "missing.html.j2", exc.status, title="Cannot expire",
                         mode=_mode(db, settings), what=str(exc))
        return Redirect(f"/silences?done={silence_id}", status_code=303)

    return Router(path="/silences", guards=[admin_guard], opt={PAGES: True},
                  route_handlers=[silences_page, add, expire])
