"""The redactor's prefilter skips only strings that no pattern could change."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.text import redact as redactor

SECRET_SHAPES = [
    "password=", "pwd=", "sig=", "AccountKey=", "token=", "api_key=", "Bearer ", "basic ",
    "BASIC ", "https://", "user:pa55@", "eyJhbGciOi", ".eyJzdWIiOi", ".c2lnbmF0dXJl", "dapi",
    "dose", "0123456789abcdef0123", '"secret": "', "'token': '", "key:", ' "', "'", ":", "=",
    ";", "&", " ", "\n", "x", "Z9", "-", "_", "/", "@", "abcdefgh", "Password: ", "SIG=",
]
"""Pieces of secrets' shapes and of the text around them, for strings built to be redacted."""
FRAGMENTS = [
    *SECRET_SHAPES, "Signature=", "client_secret=", "ClientSecret", "sk-", "Authorization",
    "credential", "private_key", "x-key", "Token", "passwd", '"', "ftp://", "Key=",
]


def _every_pattern(text: str) -> str:
    for pattern, replacement in redactor._TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return redactor._mask_pairs(text)


@settings(max_examples=1500)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_redact_text_equals_running_every_pattern(text: str) -> None:
    assert redactor.redact_text(text) == _every_pattern(text)


def test_a_plain_string_is_returned_unchanged_and_a_secret_still_masked() -> None:
    assert redactor.redact_text("Operation on target Copy_Sales failed") == (
        "Operation on target Copy_Sales failed"
    )
    assert redactor.redact_text('{"client_secret": "s3cr3t-value"}') == '{"client_secret": "***"}'
    assert redactor.redact_text("Authorization: Bearer abcdefgh12345678") == (
        "Authorization: Bearer ***"
    )

