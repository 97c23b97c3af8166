"""The one redactor masks every kind of secret and nothing that is not one."""

from __future__ import annotations

import pytest

from engine.text.redact import MASK, redact, redact_text

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "https://st.blob.core.windows.net/raw/a.csv?sv=2022-11-02&sig=AbC%2Fd3&se=2025",
            f"https://st.blob.core.windows.net/raw/a.csv?sv=2022-11-02&sig={MASK}&se=2025",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=q1w2e3==;EndpointSuffix=x",
            f"DefaultEndpointsProtocol=https;AccountName=st;AccountKey={MASK};EndpointSuffix=x",
        ),
        ("Server=tcp:s;User ID=u;Password=p@ss w0rd;", f"Server=tcp:s;User ID=u;Password={MASK};"),
        (f"Authorization: Bearer {JWT}", f"Authorization: Bearer {MASK}"),
        (f"token {JWT} end", f"token {MASK} end"),
        ("use dapi0123456789abcdef0123456789abcdef-2 here", f"use {MASK} here"),
        ("client_secret=Zx8Q~abc&grant_type=x", f"client_secret={MASK}&grant_type=x"),
        ("https://user:hunter2@host.example/path", f"https://{MASK}@host.example/path"),
        (
            '{"password": "hunter2", "task_key": "t1"}',
            f'{{"password": "{MASK}", "task_key": "t1"}}',
        ),
        ("key sk-proj-AbCdEf0123456789xyz used", f"key {MASK} used"),
        ("login failed, password: hunter2 for x", f"login failed, password: {MASK} for x"),
        ("at 2025-03-14T02:14:44Z: done", "at 2025-03-14T02:14:44Z: done"),
        (
            "ErrorCode=UserErrorSourceBlobNotExist,'Type=X'",
            "ErrorCode=UserErrorSourceBlobNotExist,'Type=X'",
        ),
    ],
)
def test_redact_text_masks_each_kind_of_secret(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_masks_values_of_secret_keys_and_keeps_the_rest() -> None:
    body = {
        "password": "p",
        "clientSecret": "s",
        "x-api-key": "k",
        "nested": [{"accessToken": "t", "task_key": "ingest", "job_cluster_key": "etl"}],
        "message": f"Bearer {JWT}",
        "count": 3,
        "client_secret": {"value": "x"},
        "passwords": ["hunter2"],
        "token": None,
        "authorization": {"action": "Microsoft.DataFactory/factories/triggers/stop/action"},
    }
    assert redact(body) == {
        "password": MASK,
        "clientSecret": MASK,
        "x-api-key": MASK,
        "nested": [{"accessToken": MASK, "task_key": "ingest", "job_cluster_key": "etl"}],
        "message": f"Bearer {MASK}",
        "count": 3,
        "client_secret": MASK,
        "passwords": MASK,
        "token": None,
        "authorization": {"action": "Microsoft.DataFactory/factories/triggers/stop/action"},
    }
    assert body["password"] == "p"  # the input is not changed


def test_long_runs_of_token_characters_are_left_alone() -> None:
    for text in ("x" * 20_000, "a-" * 10_000, "eyJ" * 7_000, "password" * 2_500, "a:" * 10_000):
        assert redact_text(text) == text
