"""Configured secrets are masked by value (engine/text/secret_values.py), through the one redactor:
in any string, in any form a payload or a log would carry them, and in dict keys; values too
short to mask safely are left to the patterns and named for a warning."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import Settings, load_settings
from engine.text import secret_values
from engine.text.redact import redact, redact_text

SLACK = "https://hooks.slack.com/services/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"
TEAMS = ("https://prod-07.westeurope.logic.azure.com:443/workflows/4f1e2d3c4b5a69788796a5b4c3d2e1f0"
         "/triggers/manual/paths/invoke?api-version=2016-06-01&sv=1.0"
         "&sig=Zk3Jd9Qw2Er5Ty8Ui1Op4As7Df0Gh3Jk6Lz9Xc2Vb5N")


@pytest.fixture
def configured(tmp_path) -> Iterator[Settings]:
    toml = tmp_path / "remediator.toml"
    toml.write_text(f"""
api_keys = ["rk-plain-7d3e91", "tiny"]
admin_keys = ["ak+adm/91e4 c0"]
basic_users = {{ ops = "pw-ops-5a8c2e" }}
[clouds.channels.slack]
url = "{SLACK}"
[clouds.channels.teams]
url = "{TEAMS}"
headers = {{ Authorization = "Bearer hdr-4e7b1c9d2a" }}
[llm]
provider = "compatible"
base_url = "http://llm.local/v1"
api_key = "llm-0a9b8c7d6e"
""")
    settings = load_settings(toml, env={})
    secret_values.use(settings)
    yield settings
    secret_values.use(Settings())


def test_every_configured_secret_is_masked_wherever_it_stands(configured: Settings) -> None:
    text = ("owner rk-plain-7d3e91; admin ak+adm/91e4 c0 (in a URL: ak%2Badm%2F91e4%20c0, "
            "in a form: ak%2Badm%2F91e4+c0, in JSON: \"ak+adm/91e4 c0\"); "
            "ops login b3BzOnB3LW9wcy01YThjMmU= or pw-ops-5a8c2e; model llm-0a9b8c7d6e; "
            "header hdr-4e7b1c9d2a")
    assert redact_text(text) == (
        "owner ***; admin *** (in a URL: ***, in a form: ***, in JSON: \"***\"); "
        "ops login *** or ***; model ***; header ***")


def test_a_chat_webhook_url_is_masked_whole_and_by_its_credential_parts(
    configured: Settings,
) -> None:
    assert redact_text(f"posted to {SLACK}") == "posted to ***"
    assert redact_text("path /services/T0123ABCD/B0456EFGH/q8Zx3Vb7Nm2Lk5Jh1Gf4Ds6A") == (
        "path ***")
    assert redact_text("token q8Zx3Vb7Nm2Lk5Jh1Gf4Ds6A leaked") == "token *** leaked"
    assert redact_text("id 4f1e2d3c4b5a69788796a5b4c3d2e1f0") == "id ***"
    # Short, ordinary parts of those URLs stay readable.
    assert redact_text("api-version=2016-06-01 via /services and /triggers/manual") == (
        "api-version=2016-06-01 via /services and /triggers/manual")


def test_keys_and_nested_values_are_masked_and_the_input_is_untouched(
    configured: Settings,
) -> None:
    payload = {"note": "call rk-plain-7d3e91", "rk-plain-7d3e91": {"list": ["pw-ops-5a8c2e"]}}
    assert redact(payload) == {"note": "call ***", "***": {"list": ["***"]}}
    assert payload["note"] == "call rk-plain-7d3e91"


def test_too_short_values_are_not_masked_by_value_and_are_named(configured: Settings) -> None:
    assert secret_values.MIN_LENGTH == 8
    assert redact_text("a tiny cluster") == "a tiny cluster"
    assert secret_values.short() == ("settings.api_keys[1]",)


def test_a_secret_configured_later_is_masked_in_text_seen_before() -> None:
    # The redactor caches answers; configuring secrets must not leave a stale one behind.
    secret_values.use(Settings())
    text = "planted rk-late-3c5e7a90"
    assert redact_text(text) == text
    assert redact({"rk-late-3c5e7a90": text}) == {"rk-late-3c5e7a90": text}
    try:
        secret_values.use(load_settings(None, env={"REMEDIATOR_API_KEYS": "rk-late-3c5e7a90"}))
        assert redact({"rk-late-3c5e7a90": text}) == {"***": "planted ***"}
    finally:
        secret_values.use(Settings())
    assert redact_text(text) == text


def test_the_service_warns_at_start_of_a_secret_too_short_to_mask(tmp_path) -> None:
    import io
    import json

    from litestar.testing import TestClient

    from engine.config import Secret
    from engine.logs import configure_logging
    from receivers.app import create_app

    logs = io.StringIO()
    configure_logging("info", "json", stream=logs)
    try:
        settings = Settings(db=str(tmp_path / "r.db"), api_keys=(Secret("rk-long-enough"),),
                            admin_keys=(Secret("adm1"),))
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
    finally:
        configure_logging()
        secret_values.use(Settings())
    warnings = [json.loads(line) for line in logs.getvalue().splitlines()
                if "too short" in line]
    assert [(w["event"], w["setting"], w["min_length"]) for w in warnings] == [
        ("secret too short to be masked by value", "settings.admin_keys[0]", 8)]
    assert "adm1" not in logs.getvalue()


def test_base64_text_that_decodes_to_a_secret_is_masked_whole(configured: Settings) -> None:
    key = "ak+adm/91e4 c0"
    for user in ("admin", "ops", "x", "night-shift", ""):  # any user: one of three offsets
        basic = base64.b64encode(f"{user}:{key}".encode()).decode()
        assert redact_text(f"Authorization sent: {basic}, then") == "Authorization sent: ***, then"
    alone = base64.urlsafe_b64encode(b"rk-plain-7d3e91").decode()
    assert redact_text(f"t={alone}&next=1") == "t=***&next=1"
    assert redact_text(f"t={alone.rstrip('=')}.") == "t=***."
    hex_ = b"rk-plain-7d3e91".hex()
    assert redact_text(f"k {hex_} K {hex_.upper()}") == "k *** K ***"
    # Base64 of other text, and ordinary words and ids, stay readable.
    other = base64.b64encode(b"admin:not-the-key-at-all").decode()
    assert redact_text(f"{other} 7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11") == (
        f"{other} 7b1e4c52-93f0-4d1a-a3b8-2c6f0e9d7a11")


@settings(max_examples=300)
@given(st.binary(max_size=40), st.binary(max_size=40), st.booleans())
def test_any_base64_of_bytes_holding_a_secret_holds_one_of_its_cores(
        before: bytes, after: bytes, url: bool) -> None:
    secret = "llm-0a9b8c7d6e"
    encode = base64.urlsafe_b64encode if url else base64.b64encode
    text = encode(before + secret.encode() + after).decode()
    assert any(core in text for core in secret_values.base64_cores(secret))
