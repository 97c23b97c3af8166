"""Which hosts an action may send to: a playbook's ``url:`` only reaches a host the settings
name (``[clouds] allowed_hosts``, or the host of a configured channel or ticket webhook).

The loader already refuses a URL whose scheme and host are templated (engine/rules/load.py);
this is the check at run time, on the rendered URL, before any request. The URL is parsed by
httpx, the client that sends it, so that the host checked is the host called.
"""

from __future__ import annotations

import httpx

from engine.config import CloudSettings
from engine.errors import PermanentActionError

__all__ = ["allowed_hosts", "check_url"]

_Host = tuple[str, int | None]


def _host_of(url: str) -> _Host:
    parsed = httpx.URL(url)
    return parsed.host.lower(), parsed.port


def allowed_hosts(clouds: CloudSettings) -> set[_Host]:
    """``(host, port)`` pairs; a port of None allows any port of that host."""
    hosts = set()
    for entry in clouds.allowed_hosts:
        hosts.add(_host_of(f"https://{entry.strip()}"))
    targets = [*clouds.channels.values(), *([clouds.ticket] if clouds.ticket else [])]
    for target in targets:
        try:
            hosts.add(_host_of(target.url.reveal()))
        except httpx.InvalidURL:  # that channel fails on its own, with its own error
            continue
    return hosts


def check_url(clouds: CloudSettings, url: str, where: str) -> None:
    """Raise PermanentActionError, naming ``where`` and the host, unless ``url`` is an http(s)
    URL to an allowed host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentActionError(f"{where}: not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PermanentActionError(f"{where}: only http and https URLs with a host are allowed")
    host, port = parsed.host.lower(), parsed.port
    allowed = allowed_hosts(clouds)
    if (host, None) not in allowed and (host, port) not in allowed:
        shown = host if port is None else f"{host}:{port}"
        raise PermanentActionError(
            f"{where}: host {shown[:200]!r} is not allowed; add it to [clouds] allowed_hosts or "
            "post to a configured channel")
