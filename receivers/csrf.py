"""No change of state from another site: a browser may change something here only from this
service's own pages.

The dashboard and ``/api`` take HTTP basic auth, which a browser caches and then sends with any
request to this origin, also with one that a page on another site makes (an auto-submitted
form, ``fetch`` with ``credentials: "include"``). So every request whose method is not GET,
HEAD or OPTIONS, on every route, is checked here before its handler (or its guards) run:

- ``Sec-Fetch-Site``, which every current browser sends: ``same-origin`` and ``none`` (the user
  did it, e.g. from the address bar) pass. ``same-site`` is refused like ``cross-site``: a
  sibling subdomain or another port of this host is another application, not these pages.
- Without it, ``Origin`` (else ``Referer``) must name this host, the ``Host`` header.
- None of the three: no browser sent it (the CLI, curl, Azure Monitor, Databricks); the
  credentials alone decide.

``/api`` also refuses a body that a form could send: a content type other than JSON, even on
an empty body (an empty form still says ``application/x-www-form-urlencoded``), and a body
without a content type (``fetch`` of a Blob). A browser sends JSON to another origin only after
a CORS preflight, which this service never grants: it sends no ``Access-Control-*`` header.

The receivers are checked too. Their real senders are servers, which send none of these
headers; a browser has no reason to post an alert, and it could: the receivers read
``text/plain`` as JSON, which a form can send, and a receiver that takes basic auth would get
credentials the browser cached for this host.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["CrossSiteGuard", "CrossSiteRequest", "JsonRequired", "cross_site", "json_required",
           "wanted_headers"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing here (no GET handler has a side effect an operator decides)."""
JSON_ONLY_PREFIX = "/api/"
_SAME_SITE_VALUES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_WANTED = frozenset({b"sec-fetch-site", b"origin", b"referer", b"host", b"content-type",
                     b"content-length", b"transfer-encoding"})
_MAX_SHOWN = 100
_WHY = "only this service's own pages may change anything here"


class CrossSiteRequest(Exception):
    """A browser sent a state-changing request from another site (answered 403)."""


class JsonRequired(Exception):
    """An ``/api`` request whose body a form could have sent (answered 415)."""


def wanted_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, str]:
    """The headers this check reads (the first of each), out of the ASGI scope's list."""
    found: dict[bytes, str] = {}
    for name, value in raw:
        if name in _WANTED and name not in found:
            found[name] = value.decode("latin-1")
    return found


def _authority(netloc: str, scheme: str) -> str:
    """``host[:port]`` in lower case, without the scheme's default port."""
    netloc = netloc.lower()
    default = ":" + _DEFAULT_PORTS[scheme]
    return netloc[: -len(default)] if netloc.endswith(default) else netloc


def _origin_of(url: str) -> tuple[str, str] | None:
    """(scheme, netloc) of an http(s) URL, or None (``null``, another scheme, not a URL)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return None
    return parts.scheme, parts.netloc


def _foreign(header: str, url: str, host: str) -> str | None:
    origin = _origin_of(url)
    if origin is not None and _authority(origin[1], origin[0]) == _authority(host, origin[0]):
        return None
    # A Referer's path and query are not echoed: only where it came from.
    shown = f"{origin[0]}://{origin[1]}" if origin is not None else url
    return f"{header} {shown[:_MAX_SHOWN]!r} is not this service ({host[:_MAX_SHOWN]!r}): {_WHY}"


def cross_site(headers: dict[bytes, str]) -> str | None:
    """Why a state-changing request with these headers comes from another site, or None.

    ``headers``: lower-case names, as :func:`wanted_headers` collects them."""
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        if site.strip().lower() in _SAME_SITE_VALUES:
            return None
        return f"Sec-Fetch-Site is {site[:_MAX_SHOWN]!r}: {_WHY}"
    host = headers.get(b"host", "")
    if b"origin" in headers:
        return _foreign("Origin", headers[b"origin"], host)
    if b"referer" in headers:
        return _foreign("Referer", headers[b"referer"], host)
    return None


def json_required(headers: dict[bytes, str]) -> str | None:
    """Why an ``/api`` request's body is not one a form cannot send, or None.

    JSON (``application/json``, ``application/*+json``) passes, and so does no content type
    with no body (the CLI's approve, pause, resume)."""
    media = headers.get(b"content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/")
                                       and media.endswith("+json")):
        return None
    has_body = (headers.get(b"content-length", "0").strip() not in ("", "0")
                or b"transfer-encoding" in headers)
    if not media and not has_body:
        return None
    sent = repr(media[:_MAX_SHOWN]) if media else "a body without a content type"
    return (f"expected Content-Type: application/json (or no body), got {sent}: "
            "/api takes no body that an HTML form can send")


class CrossSiteGuard(ASGIMiddleware):
    """The checks above, as app-level middleware: it runs on every route, those added later
    included, after routing and before the route's guards and handler."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] not in SAFE_METHODS:  # type: ignore[typeddict-item]
            headers = wanted_headers(scope["headers"])
            reason = cross_site(headers)
            if reason is not None:
                raise CrossSiteRequest(reason)
            if scope["path"].startswith(JSON_ONLY_PREFIX):
                reason = json_required(headers)
                if reason is not None:
                    raise JsonRequired(reason)
        await next_app(scope, receive, send)
