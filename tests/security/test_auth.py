"""Nobody gets in without valid credentials: every route of the app is walked (a new route
cannot be forgotten), the key check does the same work however much of a key is right, and
Entra tokens that are expired, wrongly signed, for another audience or tenant are refused."""

from __future__ import annotations

import hmac
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import TestClient

from engine.config import Settings
from tests.fixtures.app import (
    ADMIN_KEY,
    BASIC_PASSWORD,
    BASIC_USER,
    RECEIVER_KEY,
    SECOND_KEY,
    TENANT,
    basic_header,
)
from tests.fixtures.app import routes as _routes
from tests.fixtures.common import load_sample

OPEN = {"/health", "/ready"}
"""The only paths that answer without credentials."""

WRONG = [
    {},
    {"x-api-key": ""},
    {"x-api-key": "nope"},
    {"x-api-key": RECEIVER_KEY[:-1]},
    {"x-api-key": RECEIVER_KEY + "x"},
    {"authorization": "Bearer not-a-token"},
    basic_header(BASIC_USER, "wrong"),
    basic_header("", ""),
    {"authorization": "Basic !!!not-base64"},
]


def test_the_route_table_is_what_this_test_knows(client: TestClient[Any]) -> None:
    # A route added without thought shows up here first; every one below is walked.
    paths = {path for _, path in _routes(client)}
    assert paths >= OPEN
    assert {"/azure-monitor", "/synapse-monitor", "/azure-functions-monitor",
            "/databricks-monitor", "/api/events", "/schema/openapi.json"} <= paths
    assert len(_routes(client)) >= 17


@pytest.mark.parametrize("headers", WRONG, ids=[str(i) for i in range(len(WRONG))])
def test_every_route_but_health_and_ready_refuses_wrong_credentials(
    client: TestClient[Any], headers: dict[str, str]
) -> None:
    payload = load_sample("seed/adf-action-group-alert.json")
    refused = []
    for method, path in _routes(client):
        response = client.request(method, path, headers=headers,
                                  json=payload if method == "POST" else None)
        if path in OPEN:
            assert response.status_code in (200, 503), (method, path)
        else:
            # HEAD answers carry no body
            body = response.json() if method != "HEAD" else {"error": "unauthorized"}
            refused.append((method, path, response.status_code, body))
    assert refused
    assert [r for r in refused if r[2:] != (401, {"error": "unauthorized"})] == []


def test_receiver_keys_do_not_open_the_management_routes(client: TestClient[Any]) -> None:
    for method, path in _routes(client):
        if path in OPEN or method != "GET":
            continue
        for headers in ({"x-api-key": RECEIVER_KEY}, basic_header(BASIC_USER, BASIC_PASSWORD)):
            assert client.get(path, headers=headers).status_code == 401, path
        assert client.get(path, params={"api_key": ADMIN_KEY}).status_code == 401, path


def test_admin_keys_open_the_management_routes(client: TestClient[Any]) -> None:
    for method, path in _routes(client):
        if path.startswith(("/api", "/schema")) and method == "GET":
            response = client.get(path, headers={"x-api-key": ADMIN_KEY})
            assert response.status_code != 401, path


def _count_compare_digest(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Wrap the stdlib's hmac.compare_digest; the list gets the lengths of each call."""
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    return calls


@pytest.mark.parametrize("endpoint", ["synapse-monitor", "api/events"])
def test_the_key_check_does_the_same_work_however_much_of_the_key_is_right(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    calls = _count_compare_digest(monkeypatch)
    key = ADMIN_KEY if endpoint.startswith("api") else RECEIVER_KEY
    candidates = ["", "x", key[:1], key[:-1], key[:-1] + "?", "?" + key[1:], key + key,
                  "z" * len(key), SECOND_KEY, key]
    counts = []
    for candidate in candidates:
        calls.clear()
        headers = {"x-api-key": candidate} if candidate else {}
        method = client.get if endpoint.startswith("api") else client.post
        kwargs: dict[str, Any] = {"headers": headers}
        if not endpoint.startswith("api"):
            kwargs["json"] = load_sample("azure-monitor/azmon-common-metric-synapse-failed.json")
        status = method(f"/{endpoint}", **kwargs).status_code
        counts.append((candidate, len(calls), status))
    # Empty means "no key given" (nothing to compare); every given key is compared against
    # every configured key, wrong or right, whatever its length or its common prefix.
    expected = 2 if endpoint == "synapse-monitor" else 1
    assert [n for c, n, _ in counts if c] == [expected] * (len(candidates) - 1), counts
    assert [s for _, _, s in counts] == [401] * 8 + ([202, 202] if expected == 2 else [401, 200])


def test_basic_auth_compares_every_user_and_password(
    client: TestClient[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_compare_digest(monkeypatch)
    body = load_sample("databricks/databricks-job-on-failure.json")
    seen = []
    for user, password in [("x", "y"), (BASIC_USER, "y"), (BASIC_USER, BASIC_PASSWORD[:-1]),
                           ("x", BASIC_PASSWORD), (BASIC_USER, BASIC_PASSWORD)]:
        calls.clear()
        status = client.post("/databricks-monitor", json=body,
                             headers=basic_header(user, password)).status_code
        seen.append((len(calls), status))
    assert seen == [(2, 401), (2, 401), (2, 401), (2, 401), (2, 202)]


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("expired", {"exp": 1_600_000_000, "iat": 1_599_990_000, "nbf": 1_599_990_000}),
        ("not yet valid", {"nbf": 4_102_444_800}),
        ("wrong audience", {"aud": "api://someone-else"}),
        ("wrong tenant", {"tid": "00000000-0000-0000-0000-000000000000"}),
        ("wrong issuer", {"iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"}),
        ("wrong tenant and issuer", {"tid": "00000000-0000-0000-0000-000000000001",
                                     "iss": "https://sts.windows.net/"
                                            "00000000-0000-0000-0000-000000000001/"}),
        ("other app", {"appid": "11111111-2222-3333-4444-555555555555"}),
        ("no role", {"roles": None}),
        ("no exp", {"exp": None}),
        ("no aud", {"aud": None}),
    ],
)
def test_bad_entra_tokens_are_refused(
    client: TestClient[Any], make_token: Any, case: str, changes: dict[str, Any]
) -> None:
    token = make_token(**changes)
    response = client.post("/azure-monitor", json=load_sample("seed/adf-action-group-alert.json"),
                           headers={"authorization": f"Bearer {token}"})
    assert (case, response.status_code) == (case, 401)


def test_tokens_signed_with_another_key_or_algorithm_are_refused(
    client: TestClient[Any], make_token: Any, other_key: rsa.RSAPrivateKey,
    signing_key: rsa.RSAPrivateKey,
) -> None:
    from cryptography.hazmat.primitives import serialization

    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    good = make_token()
    header, claims, signature = good.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    tokens = {
        "other key": make_token(key=other_key),
        "unknown kid": make_token(kid="other-kid"),
        "HS256 with the public key as secret": _hs256(public_pem, claims),
        "alg none": _unsigned(claims),
        "tampered signature": f"{header}.{claims}.{flipped}",
        "tampered claims": f"{header}.{_reclaim(claims, tid=TENANT, aud='api://x')}.{signature}",
    }
    payload = load_sample("seed/adf-action-group-alert.json")
    statuses = {name: client.post("/azure-monitor", json=payload,
                                  headers={"authorization": f"Bearer {token}"}).status_code
                for name, token in tokens.items()}
    assert statuses == dict.fromkeys(tokens, 401)
    assert client.post("/azure-monitor", json=payload,
                       headers={"authorization": f"Bearer {good}"}).status_code == 202


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: str) -> str:
    head = _b64(b'{"alg":"none","typ":"JWT","kid":"test-key-1"}')
    return f"{head}.{claims}."


def _hs256(secret: bytes, claims: str) -> str:
    import hashlib

    head = _b64(b'{"alg":"HS256","typ":"JWT","kid":"test-key-1"}')
    mac = hmac.new(secret, f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{_b64(mac)}"


def _reclaim(claims: str, **changes: Any) -> str:
    import base64
    import json

    data = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    data.update(changes)
    return _b64(json.dumps(data).encode())


def test_an_app_without_credentials_configured_refuses_everything(
    tmp_path: Any, db: Any
) -> None:
    from receivers.app import create_app

    with TestClient(create_app(Settings(db=str(tmp_path / "x.db")), db)) as bare:
        for method, path in _routes(bare):
            if path in OPEN:
                continue
            response = bare.request(method, path, headers={"x-api-key": ""})
            assert response.status_code == 401, (method, path)
