"""The configured secrets, masked by value: a receiver key planted in a payload field is masked
although no pattern of :mod:`engine.text.redact` knows its shape.

:func:`use` takes every :class:`~engine.config.Secret` of the settings at start (receiver and
admin keys, basic-auth passwords, cloud client secrets and tokens, the LLM key, channel and
ticket webhook URLs and their headers); :func:`mask` replaces each of them wherever it occurs
in a string. ``engine.text.redact.redact_text`` calls it first, so it holds wherever redaction does:
stored events and payloads, audit records, logs, prompts, what the dashboard and the API show.

Besides each value as written, its URL-encoded and JSON-escaped forms are masked, the base64
``user:password`` of a basic-auth user, the token of an ``Authorization``-style header value
and, of a URL, what follows its host and each long path segment or query value (a chat
webhook's credential). Values shorter than :data:`MIN_LENGTH` are not masked: masking every
``ops`` or ``1234`` in the text would garble messages and point at the secret. The search is
one substring scan per form (linear in the text, a few dozen forms at most), longest first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import msgspec

from engine.config import Secret, Settings

__all__ = ["MIN_LENGTH", "URL_PART_LENGTH", "forms", "mask", "on_change", "short", "use"]

MIN_LENGTH = 8
"""The shortest configured secret that is masked by value (shorter ones only by pattern)."""

URL_PART_LENGTH = 16
"""The shortest part of a webhook URL masked on its own: chat credentials are long random
tokens, while a short segment (``/tickets``, ``api-version=2016-06-01``) is ordinary text."""

_forms: tuple[str, ...] = ()
_short: tuple[str, ...] = ()
_listeners: list[Callable[[], None]] = []


def mask(text: str, replacement: str) -> str:
    """``text`` with every configured secret form replaced by ``replacement``."""
    for form in _forms:
        if form in text:
            text = text.replace(form, replacement)
    return text


def use(settings: Settings) -> None:
    """Mask the secrets of ``settings`` from now on (instead of any set before)."""
    global _forms, _short
    found = list(_secrets(settings, "settings"))
    _short = tuple(sorted({where for where, value in found if len(value) < MIN_LENGTH}))
    values = {form for _, value in found if len(value) >= MIN_LENGTH
              for form in forms(value)}
    for user, password in settings.basic_users.items():
        if len(password.reveal()) >= MIN_LENGTH:
            values.add(base64.b64encode(f"{user}:{password.reveal()}".encode()).decode())
    _forms = tuple(sorted(values, key=lambda v: (-len(v), v)))
    for listener in _listeners:
        listener()


def short() -> tuple[str, ...]:
    """Where the settings hold a secret too short to be masked by value (for a warning)."""
    return _short


def on_change(*listeners: Callable[[], None]) -> None:
    """Call ``listeners`` whenever :func:`use` changes the secrets (caches of masked text)."""
    _listeners.extend(listeners)


def forms(value: str) -> set[str]:
    """The forms of one secret value that are masked (see the module doc)."""
    out = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    scheme, sep, token = value.partition(" ")
    if sep and scheme.isalpha() and len(token) >= MIN_LENGTH:  # "Bearer <token>"
        out.add(token)
    parts = urlsplit(value) if "://" in value else None
    if parts is not None and parts.netloc:
        tail = value.split(parts.netloc, 1)[1]
        pieces = [tail, parts.path, *parts.path.split("/"), *_query_values(parts.query)]
        out.update(p for p in pieces if len(p) >= URL_PART_LENGTH)
    return {form for form in out if len(form) >= MIN_LENGTH}


def _query_values(query: str) -> Iterator[str]:
    for pair in query.split("&"):
        yield pair.partition("=")[2]


def _secrets(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every Secret under ``value`` (settings Structs, dicts, tuples) with where it is."""
    if isinstance(value, Secret):
        yield where, value.reveal()
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            yield from _secrets(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secrets(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _secrets(item, f"{where}[{i}]")
