"""Security headers on every answer of the app: the dashboard, ``/api``, the receivers, errors.

The dashboard is server-rendered HTML with its stylesheet and its one script (the in-place
refresh) from ``/static``, so the policy allows only this origin and nothing inline; no page
may be framed (clickjacking the approve button); nothing is cached, since every answer but
``/health`` and ``/ready`` is behind the admin or receiver credentials and may show incident
data; the Referer leaves nothing off this origin; and other origins may not embed our
answers. No CORS header is ever sent (see :mod:`receivers.csrf`).
"""

from __future__ import annotations

from litestar.types import Message, Scope

__all__ = ["SECURITY_HEADERS", "add_security_headers"]

SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": ("default-src 'self'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "cross-origin-resource-policy": "same-origin",
}
_ENCODED = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_NAMES = frozenset(name for name, _ in _ENCODED)


async def add_security_headers(message: Message, _: Scope) -> None:
    """A Litestar ``before_send`` hook: it sees every answer, also those of the exception
    handlers and of the router (404, 405); a value a handler set is replaced."""
    if message["type"] == "http.response.start":
        kept = [h for h in message.get("headers", ()) if h[0].lower() not in _NAMES]
        message["headers"] = kept + _ENCODED
