"""The one redactor: what it masks never reaches a log, the audit log, a stored payload or a prompt.

It masks SAS signatures (``sig=``), ``AccountKey=``, passwords in connection strings, bearer
tokens and JWTs, Databricks tokens (``dapi...``), client secrets, credentials in URLs, and the
value of any key whose name says password, secret, token or key.
"""

from __future__ import annotations

import functools
from typing import Any

from engine.text import patterns, secret_values

__all__ = ["MASK", "redact", "redact_text"]

MASK = "***"

# RE2 (engine/text/patterns.py) reads \s and \w as ASCII; Python's re, which these patterns were
# written for, reads them as Unicode. Where that decides whether a secret is found (the space
# after "Bearer", the characters of a key), these classes keep the Unicode meaning.
_SC = patterns.SPACE
_S = f"[{_SC}]"
_W = patterns.WORD

# RE2 has no lookbehind: "not preceded by a token character" is a group that matches the
# character before (or the start of the text) and that the replacement puts back. Such a
# match ends in a token character, so that character was never part of the previous match.
_TEXT_PATTERNS: tuple[tuple[patterns.Pattern, str], ...] = (
    # JWTs (three base64url parts, the first a JSON header)
    (
        patterns.compile(
            r"(^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"
        ),
        rf"\1{MASK}",
    ),
    (patterns.compile(rf"(?i)\b(bearer){_S}+[A-Za-z0-9._~+/=-]{{8,}}"), rf"\1 {MASK}"),
    (patterns.compile(rf"(?i)\b(basic){_S}+[A-Za-z0-9+/=]{{8,}}"), rf"\1 {MASK}"),
    (patterns.compile(r"\bdapi[0-9a-f]{16,}(?:-\d+)?\b"), MASK),
    (patterns.compile(r"\bdose[0-9a-f]{16,}\b"), MASK),
    # user:password@ in URLs
    (
        patterns.compile(
            rf"(?i)\b([a-z][a-z0-9+.-]{{0,30}}://)[^/:@{_SC}]{{1,256}}:[^/@{_SC}]{{1,256}}@"
        ),
        rf"\1{MASK}@",
    ),
    # passwords in connection strings run to the next `;` and may hold spaces
    (patterns.compile(r"(?i)\b(password|pwd)=([^;&'\"\r\n]+)"), rf"\1={MASK}"),
    # key=value secrets in query strings and connection strings
    (
        patterns.compile(
            r"(?i)\b(sig|signature|accountkey|sharedaccesskey|password|pwd|client_secret|"
            rf"clientsecret|api[_-]?key|access_token|refresh_token|token)=([^&;'\"{_SC}]+)"
        ),
        rf"\1={MASK}",
    ),
    # OpenAI-style keys
    (patterns.compile(r"(^|[^A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}"), rf"\1{MASK}"),
    # `password: value` written without quotes (logs, YAML, error messages); the value's
    # first character is neither a quote nor a space, as its class says
    (
        patterns.compile(
            r"(?i)\b(password|passwd|pwd|secret|client_secret|token|api[_-]?key|access[_-]?key)"
            rf"({_S}*:{_S}*)([^'\",;{_SC}]+)"
        ),
        rf"\1\2{MASK}",
    ),
)

# Key names. Python's `$` also matched before a final newline; `\n?$` keeps that meaning.
_SECRET_KEY = patterns.compile(
    r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|apikey|accountkey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|authorization|credential|^sig\n?$|^key\n?$|_key\n?$|"
    r"-key\n?$)"
)
# Keys that contain "key" but hold no secret.
_NOT_SECRET = patterns.compile(
    r"(?i)^(task_key|job_cluster_key|dedup_key|idempotency_key|partition_key|row_key|"
    r"key_vault|keyvault|primary_key_column|sort_key|cache_key)\n?$"
)


# "secret": "value" or secret='value' inside text (embedded JSON, logs). Group 1 is the
# character before the pair (it must not be a key character); the key is group 2, 3 or 4
# (double-quoted, single-quoted, bare), the value group 6. A key is at most _KEY_LIMIT
# characters, checked in code: `{1,64}` of a Unicode class is an automaton RE2 cannot cache
# (100 µs a search instead of 2).
_QUOTED_PAIR = patterns.compile(
    rf"""(^|[^{_W}-])(?:"([{_W}-]+)"|'([{_W}-]+)'|([{_W}-]+))"""
    rf"""({_S}*[:=]{_S}*["'])([^"']*)(["'])"""
)
_KEY_LIMIT = 64
_MASK_BYTES = MASK.encode()


def _mask_pairs(text: str) -> str:
    """``text`` with the value of every quoted pair under a secret key masked."""
    data = patterns.utf8(text)
    out: list[bytes] = []
    done = pos = 0
    while (spans := _QUOTED_PAIR.scan(data, pos)) is not None:
        key_at, key_end = next(span for span in spans[2:5] if span[0] >= 0)
        key = data[key_at:key_end].decode("utf-8")
        if len(key) > _KEY_LIMIT:
            # Not a pair, and none begins inside the key: go on from its end (a closing quote
            # there may be the character before the next pair).
            pos = key_end
            continue
        if _is_secret_key(key):
            start, stop = spans[6]
            out.append(data[done:start])
            out.append(_MASK_BYTES)
            done = stop
        # The closing quote may be the character before the next pair: search from it.
        pos = spans[0][1] - 1
    if not out:
        return text
    out.append(data[done:])
    return b"".join(out).decode("utf-8")


# What each of _TEXT_PATTERNS needs before it can match, in order: any of these substrings of
# the lower-cased text (a superset test: the pattern still decides). Most strings (names, ids,
# timestamps, messages, portal and log-query URLs) hold none, so they cost a lower() and a few
# substring checks instead of ten regex scans (a 1 KB log-query URL: ~600 µs -> ~10 µs).
_NEEDLES: tuple[tuple[str, ...], ...] = (
    ("eyj",),
    ("bearer",),
    ("basic",),
    ("dapi",),
    ("dose",),
    ("@",),  # user:password@ (the pattern also needs "://")
    ("password=", "pwd="),
    ("sig=", "signature=", "key=", "password=", "pwd=", "secret=", "token="),
    ("sk-",),
    ("pass", "pwd", "secret", "token", "key"),
)
# A quoted pair is masked only under a secret key name: one of these is in every name that
# _SECRET_KEY matches.
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "authorization", "credential", "sig")


def redact_text(text: str) -> str:
    """Mask every configured secret (:mod:`engine.text.secret_values`) and every secret-looking
    part of a string."""
    text = secret_values.mask(text, MASK)
    lower = text.lower()
    for needles, (pattern, replacement) in zip(_NEEDLES, _TEXT_PATTERNS, strict=True):
        if any(needle in lower for needle in needles):
            text = pattern.sub(replacement, text)
            lower = text.lower()
    if ('"' in text or "'" in text) and any(word in lower for word in _SECRET_WORDS):
        return _mask_pairs(text)
    return text


# Objects under these names describe access (Azure's activity-log `authorization` holds an
# action and a scope); their inner keys are checked one by one instead.
_DESCRIBES_ACCESS = patterns.compile(r"(?i)^(authorization|credentials?)\n?$")


def _maskable(key: str, item: Any) -> bool:
    if item is None or isinstance(item, bool):
        return False
    return not (isinstance(item, dict | list | tuple) and _DESCRIBES_ACCESS.match(key))


# The audit's match records repeat the same key names, rule ids and reasons event after event,
# and intake redacts a payload and then the events' attributes copied from it: both checks are
# pure, so strings are answered from bounded caches (long ones in a small cache of their own).
_redact_short = functools.lru_cache(maxsize=4096)(redact_text)
_redact_long = functools.lru_cache(maxsize=256)(redact_text)
# Dict keys are masked by value only (a planted key); answers depend on the configured secrets.
_key = functools.lru_cache(maxsize=4096)(lambda key: secret_values.mask(key, MASK))
secret_values.on_change(_redact_short.cache_clear, _redact_long.cache_clear, _key.cache_clear)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET.match(key)


def _text(value: str) -> str:
    if len(value) <= 512:
        return _redact_short(value)
    return _redact_long(value) if len(value) <= 8192 else redact_text(value)


_PLAIN = frozenset({int, float, bool, type(None)})


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like data) with secrets masked; the input is not changed."""
    kind = type(value)  # exact types first: this walks every value of every payload
    if kind is str:
        return _text(value)
    if kind is dict:
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if type(key) is str:
                key = _key(key)
            if isinstance(key, str) and _is_secret_key(key) and _maskable(key, item):
                out[key] = MASK  # the whole value, whatever its shape (a list, an object)
            elif type(item) is str:
                out[key] = _text(item)
            elif type(item) in _PLAIN:
                out[key] = item
            else:
                out[key] = redact(item)
        return out
    if kind is list or kind is tuple:
        return [redact(item) for item in value]
    if kind in _PLAIN:
        return value
    if isinstance(value, str):  # subclasses (str enums)
        return _text(value)
    if isinstance(value, dict):
        return redact(dict(value))
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value
