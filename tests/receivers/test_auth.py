"""Authentication through the real app: every method accepted where configured, refused alike
everywhere else, with the same 401 body that never says which part was wrong."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from litestar.testing import TestClient

from engine.config import ReceiverSettings, Secret, Settings
from engine.store.db import Database
from receivers.app import create_app
from receivers.auth import Authenticator
from tests.fixtures.app import (
    ADMIN_KEY,
    BASIC_PASSWORD,
    BASIC_USER,
    RECEIVER_KEY,
    SECOND_KEY,
    TENANT,
    admin_headers,
    api_key_headers,
    basic_header,
)
from tests.fixtures.common import load_sample

UNAUTHORIZED = {"error": "unauthorized"}
SAMPLE = load_sample("seed/adf-action-group-alert.json")


def post(client: TestClient[Any], path: str = "/azure-monitor", **kwargs: Any) -> Any:
    return client.post(path, json=SAMPLE, **kwargs)


def assert_refused(response: Any) -> None:
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"]


def test_api_key_in_the_header_is_accepted(client: TestClient[Any]) -> None:
    assert post(client, headers=api_key_headers()).status_code == 202


def test_api_key_in_the_query_string_is_accepted(client: TestClient[Any]) -> None:
    assert post(client, params={"api_key": RECEIVER_KEY}).status_code == 202


def test_a_second_key_is_accepted_for_rotation(client: TestClient[Any]) -> None:
    assert post(client, headers=api_key_headers(SECOND_KEY)).status_code == 202
    assert post(client, params={"api_key": SECOND_KEY}).status_code == 202


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"headers": {"x-api-key": "rk-first-0f4c2a9X"}},
        {"headers": {"x-api-key": ""}},
        {"params": {"api_key": "nope"}},
        {"headers": {"x-api-key": ADMIN_KEY}},  # admin keys are not receiver keys
        {"headers": {"authorization": "ApiKey " + RECEIVER_KEY}},
    ],
    ids=["no-key", "wrong-key", "empty-key", "wrong-query-key", "admin-key", "key-as-scheme"],
)
def test_wrong_or_missing_keys_are_refused(client: TestClient[Any], kwargs: dict) -> None:
    response = post(client, **kwargs)
    assert_refused(response)
    assert response.headers["www-authenticate"] == (
        'Basic realm="remediator", Bearer realm="remediator", '
        'ApiKey realm="remediator", header="x-api-key", query="api_key"'
    )


def test_basic_auth_right_and_wrong(client: TestClient[Any]) -> None:
    assert post(client, headers=basic_header(BASIC_USER, BASIC_PASSWORD)).status_code == 202
    assert_refused(post(client, headers=basic_header(BASIC_USER, "wrong")))
    assert_refused(post(client, headers=basic_header("someone", BASIC_PASSWORD)))
    assert_refused(post(client, headers={"authorization": "Basic !!notbase64!!"}))
    assert_refused(post(client, headers=basic_header(BASIC_USER, RECEIVER_KEY)))


def test_a_valid_entra_token_is_accepted(client: TestClient[Any], make_token) -> None:
    response = post(client, headers={"authorization": f"Bearer {make_token()}"})
    assert response.status_code == 202


def test_a_v2_entra_token_is_accepted(client: TestClient[Any], make_token) -> None:
    token = make_token(
        ver="2.0", appid=None, azp="461e8683-5575-4561-ac7f-899cc907d62a",
        iss=f"https://login.microsoftonline.com/{TENANT}/v2.0",
    )
    assert post(client, headers={"authorization": f"Bearer {token}"}).status_code == 202


def _bad_tokens(make_token, other_key) -> dict[str, str]:
    import time

    now = int(time.time())
    return {
        "expired": make_token(exp=now - 10, iat=now - 4000, nbf=now - 4000),
        "not-yet-valid": make_token(nbf=now + 600),
        "no-exp": make_token(exp=None),
        "other-key": make_token(key=other_key),
        "unknown-kid": make_token(kid="another-kid"),
        "wrong-audience": make_token(aud="api://someone-else"),
        "wrong-issuer": make_token(iss="https://sts.windows.net/evil-tenant/"),
        "wrong-tenant": make_token(tid="00000000-0000-0000-0000-000000000000"),
        "wrong-app-id": make_token(appid="11111111-2222-3333-4444-555555555555"),
        "v2-app-id-in-appid-only": make_token(ver="2.0"),
        "missing-role": make_token(roles=["Other.Role"]),
        "no-roles": make_token(roles=None),
        "alg-none": _unsigned_token(),
        "hs256": make_token(key="a-shared-secret-of-32-bytes-long!!", alg="HS256"),
        "garbage": "not.a.token",
    }


def _unsigned_token() -> str:
    from tests.fixtures.app import KID, entra_claims

    return jwt.encode(entra_claims(), key=None, algorithm="none", headers={"kid": KID})


@pytest.mark.parametrize(
    "case",
    ["expired", "not-yet-valid", "no-exp", "other-key", "unknown-kid", "wrong-audience",
     "wrong-issuer", "wrong-tenant", "wrong-app-id", "v2-app-id-in-appid-only", "missing-role",
     "no-roles", "alg-none", "hs256", "garbage"],
)
def test_bad_entra_tokens_are_refused_alike(
    client: TestClient[Any], make_token, other_key, case: str
) -> None:
    token = _bad_tokens(make_token, other_key)[case]
    assert_refused(post(client, headers={"authorization": f"Bearer {token}"}))


def test_receivers_refuse_methods_they_are_not_configured_for(
    client: TestClient[Any], make_token
) -> None:
    # /databricks-monitor takes basic only; /synapse-monitor the default (key, basic).
    databricks = load_sample("databricks/databricks-job-on-failure.json")
    response = client.post("/databricks-monitor", json=databricks, headers=api_key_headers())
    assert_refused(response)
    assert response.headers["www-authenticate"] == 'Basic realm="remediator"'
    response = client.post("/databricks-monitor", json=databricks,
                           headers=basic_header(BASIC_USER, BASIC_PASSWORD))
    assert response.status_code == 202
    synapse = load_sample("azure-monitor/azmon-common-metric-synapse-failed.json")
    response = client.post("/synapse-monitor", json=synapse,
                           headers={"authorization": f"Bearer {make_token()}"})
    assert_refused(response)


def test_admin_endpoints_take_admin_keys_only(client: TestClient[Any]) -> None:
    assert client.get("/api/events", headers=admin_headers()).status_code == 200
    assert client.get("/api/events", headers=basic_header("anyone", ADMIN_KEY)).status_code == 200
    for headers in (api_key_headers(), basic_header(BASIC_USER, BASIC_PASSWORD), {}):
        response = client.get("/api/events", headers=headers)
        assert_refused(response)
        assert response.headers["www-authenticate"] == 'Basic realm="remediator-admin"'
    # Admin keys do not ride in the query string (it ends up in proxies' logs).
    assert_refused(client.get("/api/events", params={"api_key": ADMIN_KEY}))


def test_the_openapi_document_needs_an_admin_key(client: TestClient[Any]) -> None:
    assert_refused(client.get("/schema/openapi.json"))
    response = client.get("/schema/openapi.json", headers=admin_headers())
    assert response.status_code == 200
    assert "/azure-monitor" in response.json()["paths"]


def test_health_and_ready_are_open(client: TestClient[Any]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}


def test_without_any_credentials_configured_everything_but_health_is_refused(
    db: Database, tmp_path
) -> None:
    settings = Settings(db=str(tmp_path / "x.db"))
    assert Authenticator(settings).problems() == [
        "no api_keys, admin_keys, basic_users or entra configured: "
        "every endpoint but /health and /ready refuses all requests"
    ]
    with TestClient(create_app(settings, db)) as client:
        assert_refused(client.post("/azure-monitor", json=SAMPLE))
        assert_refused(client.post("/azure-monitor", json=SAMPLE, headers={"x-api-key": ""}))
        assert_refused(client.get("/api/events"))
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200


def test_empty_secrets_never_match(db: Database, tmp_path) -> None:
    settings = Settings(db=str(tmp_path / "x.db"), api_keys=(Secret(""),),
                        admin_keys=(Secret(""),))
    with TestClient(create_app(settings, db)) as client:
        assert_refused(client.post("/azure-monitor", json=SAMPLE, headers={"x-api-key": ""}))
        assert_refused(client.get("/api/events", headers={"x-api-key": ""}))


def test_problems_name_each_receiver_that_cannot_accept_anyone(tmp_path) -> None:
    settings = Settings(db=str(tmp_path / "x.db"), basic_users={"u": Secret("p")})
    assert Authenticator(settings).problems() == [
        "no admin_keys configured: /api refuses all requests"
    ]
    settings = Settings(db=str(tmp_path / "x.db"), api_keys=(Secret("k"),),
                        admin_keys=(Secret("a"),),
                        receivers={"databricks-monitor": ReceiverSettings(auth=("basic",))})
    assert Authenticator(settings).problems() == [
        "receiver /databricks-monitor has no usable credentials for ['basic']: "
        "it refuses all requests"
    ]


def test_signing_keys_load_once_from_a_jwks_url(
    app_settings: Settings, jwks_file, make_token, db: Database
) -> None:
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    import msgspec

    handler = partial(SimpleHTTPRequestHandler, directory=str(jwks_file.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{jwks_file.name}"
        entra = msgspec.structs.replace(app_settings.entra, jwks_file="", jwks_url=url)
        app = create_app(msgspec.structs.replace(app_settings, entra=entra), db)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    # The server is gone: tokens are checked against the keys loaded at start.
    with TestClient(app) as client:
        response = post(client, headers={"authorization": f"Bearer {make_token()}"})
        assert response.status_code == 202


def test_unloadable_signing_keys_are_a_config_error(app_settings: Settings, tmp_path) -> None:
    import msgspec

    from engine.errors import ConfigError

    missing = tmp_path / "missing-jwks.json"
    entra = msgspec.structs.replace(app_settings.entra, jwks_file=str(missing))
    with pytest.raises(ConfigError) as info:
        Authenticator(msgspec.structs.replace(app_settings, entra=entra))
    assert str(info.value) == (
        f"entra: cannot load signing keys from {missing}: "
        f"[Errno 2] No such file or directory: '{missing}'"
    )
