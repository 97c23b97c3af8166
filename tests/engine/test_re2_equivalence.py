"""The RE2 rewrites of the redactor's and the fingerprint's patterns mean what the ``re``
patterns they replace meant (issue 14): the old ones, with their lookarounds and
backreference, are kept here as the reference and both run on the same generated text.

(Only where the two engines' alphabets agree: RE2 reads ``\\b`` and ``\\d`` as ASCII, so a
non-ASCII letter next to a token can make a difference; the redactor then masks more, never
less. Unicode spaces are in the alphabet: around a secret, they still count as spaces.)
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import mask_message
from engine.text.redact import MASK, redact_text
from tests.engine.test_redact_prefilter import SECRET_SHAPES

_OLD_TEXT_PATTERNS = (
    (re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
     MASK),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"(?i)\b(basic)\s+[A-Za-z0-9+/=]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"\bdapi[0-9a-f]{16,}(?:-\d+)?\b"), MASK),
    (re.compile(r"\bdose[0-9a-f]{16,}\b"), MASK),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://)[^\s/:@]{1,256}:[^\s/@]{1,256}@"),
     rf"\1{MASK}@"),
    (re.compile(r"(?i)\b(password|pwd)=([^;&'\"\r\n]+)"), rf"\1={MASK}"),
    (re.compile(r"(?i)\b(sig|signature|accountkey|sharedaccesskey|password|pwd|client_secret|"
                r"clientsecret|api[_-]?key|access_token|refresh_token|token)=([^&;\s'\"]+)"),
     rf"\1={MASK}"),
    (re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}"), MASK),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|client_secret|token|api[_-]?key|"
                r"access[_-]?key)(\s*:\s*)(?![\"'\s])([^\s'\",;]+)"), rf"\1\2{MASK}"),
)
_OLD_SECRET_KEY = re.compile(
    r"(?i)(password|passwd|pwd|secret|token|api[_-]?key|apikey|accountkey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|authorization|credential|^sig$|^key$|_key$|-key$)")
_OLD_NOT_SECRET = re.compile(
    r"(?i)^(task_key|job_cluster_key|dedup_key|idempotency_key|partition_key|"
    r"row_key|key_vault|keyvault|primary_key_column|sort_key|cache_key)$")
_OLD_QUOTED_PAIR = re.compile(
    r"""(?<![\w-])(["']?)([\w-]{1,64})\1(\s*[:=]\s*["'])([^"']*)(["'])""")


def _old_mask_pair(m: re.Match[str]) -> str:
    key = m.group(2)
    if not (_OLD_SECRET_KEY.search(key) and not _OLD_NOT_SECRET.match(key)):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{MASK}{m.group(5)}"


def _old_redact_text(text: str) -> str:
    for pattern, replacement in _OLD_TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return _OLD_QUOTED_PAIR.sub(_old_mask_pair, text)


_OLD_MASKS = (
    (re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*"), r"\1?<q>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                r"(?:Z|[+-]\d{2}:?\d{2})?)?"), "<ts>"),
    (re.compile(r"(?<=/)\d{4}/\d{1,2}(?:/\d{1,2})?(?=/|\b)"), "<date>"),
    (re.compile(r"(?<![0-9A-Za-z])(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])(?!\d)"),
     "<date>"),
    (re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"), "<id>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<id>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"), "<id>"),
    (re.compile(r"\b\d{4}-\d{6}-[0-9a-z]{8}\b"), "<id>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def _old_mask_message(message: str) -> str:
    text = message
    for pattern, replacement in _OLD_MASKS:
        text = pattern.sub(replacement, text)
    return re.sub(r"\s+", " ", text).strip()


SECRET_FRAGMENTS = [
    *SECRET_SHAPES, "sk-", "sk-proj-AbCdEf0123456789", "Authorization", "private_key", "x-key",
    "task_key", '"', "\u00a0", "\u2003", "\t", "\r\n", "key\n", "12345678", "client_secret",
    "k" * 40, "password" * 8,
]
MASK_FRAGMENTS = [
    "https://", "st.blob/x", "?", "sig=1", " ", "\n", "\u00a0", "'", '"', "/", "2025", "-03",
    "-14", "T02:14:44", "Z", "+01:00", ".5", "20250314", "19991231", "_", "x", "0314",
    "-020004-", "k3x9wq2e", "3f2a9c1e", "deadbeef", "DEADBEEF", "0123456789abcdef", "-",
    "12345678", "abcdefab", "1", "9", "a", "f", "g", "file", "-0000-", "1234-5678-9abc",
]


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(SECRET_FRAGMENTS), max_size=14).map("".join))
def test_the_redactor_masks_what_the_re_patterns_masked(text: str) -> None:
    assert redact_text(text) == _old_redact_text(text)


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(MASK_FRAGMENTS), max_size=16).map("".join))
def test_fingerprint_masks_read_as_the_re_masks_did(text: str) -> None:
    assert mask_message(text) == _old_mask_message(text)


def test_a_secret_after_a_unicode_space_is_still_masked() -> None:
    assert redact_text("Authorization: Bearer\u00a0abcdefgh12345678") == (
        f"Authorization: Bearer {MASK}")
    assert redact_text("password\u2003:\u2003hunter2") == f"password\u2003:\u2003{MASK}"
    assert redact_text('{"clé_secret": "s3cr3t"}') == f'{{"clé_secret": "{MASK}"}}'
    assert redact_text('{"a":"b""password":"hunter2"}') == f'{{"a":"b""password":"{MASK}"}}'
