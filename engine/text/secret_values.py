"""The configured secrets, masked by value: a receiver key planted in a payload field is masked
although no pattern of :mod:`engine.text.redact` knows its shape.

:func:`use` takes every :class:`~engine.config.Secret` of the settings at start (receiver and
admin keys, basic-auth passwords, cloud client secrets and tokens, the LLM key, channel and
ticket webhook URLs and their headers); :func:`mask` replaces each of them wherever it occurs
in a string. ``engine.text.redact.redact_text`` calls it first, so it holds wherever redaction does:
stored events and payloads, audit records, logs, prompts, what the dashboard and the API show.

Besides each value as written, its URL-encoded and JSON-escaped forms are masked, the token
of an ``Authorization``-style header value and, of a URL, what follows its host and each long
path segment or query value (a chat webhook's credential). Encoded, of each value (and header
token): its hex (lower and upper case), and any base64 or base64url text whose decoding
contains it, wherever it stands in the decoded bytes (``Basic`` credentials ``<any
user>:<key>``, a key alone, a key inside a longer token): such text always contains one of
three strings fixed by the secret, one per offset of the secret modulo 3 in the decoded bytes
(:func:`base64_cores`); a hit masks the whole base64 run around it. Values shorter than
:data:`MIN_LENGTH` are not masked: masking every ``ops`` or ``1234`` in the text would garble
messages and point at the secret.

Most text holds no secret: one RE2 search for all forms at once (linear in the text, whatever
their number) answers that; only a text with a hit is scanned form by form, longest first.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import msgspec

from engine.config import Secret, Settings
from engine.text import patterns

__all__ = ["MIN_LENGTH", "URL_PART_LENGTH", "base64_cores", "forms", "mask", "on_change",
           "short", "use"]

MIN_LENGTH = 8
"""The shortest configured secret that is masked by value (shorter ones only by pattern)."""

URL_PART_LENGTH = 16
"""The shortest part of a webhook URL masked on its own: chat credentials are long random
tokens, while a short segment (``/tickets``, ``api-version=2016-06-01``) is ordinary text."""

_forms: tuple[str, ...] = ()
_cores: tuple[str, ...] = ()
_any: patterns.Pattern | None = None
_short: tuple[str, ...] = ()
_listeners: list[Callable[[], None]] = []

_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
"""The characters of base64 and base64url text (without the ``=`` padding)."""


def mask(text: str, replacement: str) -> str:
    """``text`` with every configured secret form replaced by ``replacement``."""
    if _any is None or len(text) < MIN_LENGTH or _any.search(text) is None:
        return text
    for form in _forms:
        if form in text:
            text = text.replace(form, replacement)
    for core in _cores:
        if core in text:
            text = _mask_runs(text, core, replacement)
    return text


def _mask_runs(text: str, core: str, replacement: str) -> str:
    """``text`` with each base64 run (and its ``=`` padding) that holds ``core`` replaced."""
    out: list[str] = []
    pos = 0
    while (found := text.find(core, pos)) >= 0:
        start, end = found, found + len(core)
        while start > pos and text[start - 1] in _BASE64:
            start -= 1
        while end < len(text) and text[end] in _BASE64:
            end += 1
        for _ in range(2):
            if end < len(text) and text[end] == "=":
                end += 1
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def use(settings: Settings) -> None:
    """Mask the secrets of ``settings`` from now on (instead of any set before)."""
    global _forms, _cores, _any, _short
    found = list(_secrets(settings, "settings"))
    _short = tuple(sorted({where for where, value in found if len(value) < MIN_LENGTH}))
    values, cores = set(), set()
    for _, value in found:
        if len(value) >= MIN_LENGTH:
            values.update(forms(value))
            for key in _keys(value):
                raw = key.encode("utf-8")
                values.update((raw.hex(), raw.hex().upper()))
                cores.update(base64_cores(key))
    _forms = tuple(sorted(values, key=lambda v: (-len(v), v)))
    _cores = tuple(sorted(cores - values, key=lambda v: (-len(v), v)))
    every = (*_forms, *_cores)
    _any = patterns.compile("|".join(map(_literal, every))) if every else None
    for listener in _listeners:
        listener()


def _keys(value: str) -> set[str]:
    """The value and, of an ``Authorization``-style header value, its token: what may be
    encoded whole (a URL's parts are not)."""
    scheme, sep, token = value.partition(" ")
    header = sep and scheme.isalpha() and len(token) >= MIN_LENGTH
    return {value, token} if header else {value}


def base64_cores(value: str) -> set[str]:
    """Of each of the three offsets (mod 3) that ``value`` may have in bytes that are base64
    encoded, the characters of the encoding that depend on ``value``'s bytes alone, in both
    alphabets: base64 (or base64url) text decodes to bytes containing ``value`` only if it
    contains one of these."""
    raw = value.encode("utf-8")
    out = set()
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + raw).decode("ascii")
        core = encoded[(8 * offset + 5) // 6: 8 * (offset + len(raw)) // 6]
        out.update((core, core.replace("+", "-").replace("/", "_")))
    return {core for core in out if len(core) >= MIN_LENGTH}


def _literal(text: str) -> str:
    """``text`` as an RE2 pattern that matches it literally."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


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
