"""The one redactor: what it masks never reaches a log, the audit log, a stored payload or a prompt.

It masks SAS signatures (``sig=``), ``AccountKey=``, passwords in connection strings, bearer
tokens and JWTs, Databricks tokens (``dapi...``), client secrets, credentials in URLs, and the
value of any key whose name says password, secret, token or key.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from engine import secret_values

__all__ = ["MASK", "redact", "redact_text"]

MASK = "***"

_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JWTs (three base64url parts, the first a JSON header)
    # (every pattern starts at a token boundary or is bounded, so that scans stay linear)
    (
        re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
        MASK,
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"(?i)\b(basic)\s+[A-Za-z0-9+/=]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"\bdapi[0-9a-f]{16,}(?:-\d+)?\b"), MASK),
    (re.compile(r"\bdose[0-9a-f]{16,}\b"), MASK),
    # user:password@ in URLs
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^\s/:@]{1,256}:[^\s/@]{1,256}@"),
        rf"\1{MASK}@",
    ),
    # passwords in connection strings run to the next `;` and may hold spaces
    (re.compile(r"(?i)\b(password|pwd)=([^;&'\"\r\n]+)"), rf"\1={MASK}"),
    # key=value secrets in query strings and connection strings
    (
        re.compile(
            r"(?i)\b(sig|signature|accountkey|sharedaccesskey|password|pwd|client_secret|"
            r"clientsecret|api[_-]?key|access_token|refresh_token|token)=([^&;\s'\"]+)"
        ),
        rf"\1={MASK}",
    ),
    # OpenAI-style keys
    (re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}"), MASK),
    # `password: value` written without quotes (logs, YAML, error messages)
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|client_secret|token|api[_-]?key|access[_-]?key)"
            r"(\s*:\s*)(?![\"'\s])([^\s'\",;]+)"
        ),
        rf"\1\2{MASK}",
    ),
)

_SECRET_KEY = re.compile(
    r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|apikey|accountkey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|authorization|credential|^sig$|^key$|_key$|-key$)"
)
# Keys that contain "key" but hold no secret.
_NOT_SECRET = re.compile(r"(?i)^(task_key|job_cluster_key|dedup_key|idempotency_key|partition_key|"
                         r"row_key|key_vault|keyvault|primary_key_column|sort_key|cache_key)$")


# "secret": "value" or secret='value' inside text (embedded JSON, logs). Keys are bounded in
# length so that the scan stays linear on long runs of word characters.
_QUOTED_PAIR = re.compile(r"""(?<![\w-])(["']?)([\w-]{1,64})\1(\s*[:=]\s*["'])([^"']*)(["'])""")


def _mask_pair(m: re.Match[str]) -> str:
    if not _is_secret_key(m.group(2)):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{MASK}{m.group(5)}"


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
    """Mask every configured secret (:mod:`engine.secret_values`) and every secret-looking
    part of a string."""
    text = secret_values.mask(text, MASK)
    lower = text.lower()
    for needles, (pattern, replacement) in zip(_NEEDLES, _TEXT_PATTERNS, strict=True):
        if any(needle in lower for needle in needles):
            text = pattern.sub(replacement, text)
            lower = text.lower()
    if ('"' in text or "'" in text) and any(word in lower for word in _SECRET_WORDS):
        return _QUOTED_PAIR.sub(_mask_pair, text)
    return text


# Objects under these names describe access (Azure's activity-log `authorization` holds an
# action and a scope); their inner keys are checked one by one instead.
_DESCRIBES_ACCESS = re.compile(r"(?i)^(authorization|credentials?)$")


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
