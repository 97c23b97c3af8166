"""Entra rolls its signing keys: tokens signed with the new key are accepted without a
restart, once the keys are fetched again, and unknown key ids fetch at most once per interval.

The keys come from a ``jwks_file`` that the test rewrites (a ``jwks_url`` goes through the same
loader); the interval runs on a clock the test moves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.testing import TestClient

from engine.config import Settings
from engine.store.db import Database
from receivers.app import create_app
from receivers.auth import Authenticator
from tests.fixtures.app import KID
from tests.fixtures.common import load_sample

SAMPLE = load_sample("seed/adf-action-group-alert.json")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _post(client: TestClient[Any], token: str) -> int:
    response = client.post("/azure-monitor", json=SAMPLE,
                           headers={"authorization": f"Bearer {token}"})
    return response.status_code


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return jwk


def test_a_rolled_key_is_fetched_again_and_unknown_kids_fetch_once_per_interval(
    app_settings: Settings, jwks_file: Path, signing_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey, make_token: Any, db: Database,
) -> None:
    clock = Clock()
    auth = Authenticator(app_settings, jwks_refresh_s=300, clock=clock)
    keys = auth.signing_keys
    assert keys is not None

    def post(token: str) -> int:
        return _post(client, token)

    def refused_until_the_interval_passes(token: str) -> None:
        # Within the interval since the last load: refused, and nothing is fetched.
        assert post(token) == 401
        keys.wait()
        assert post(token) == 401
        # Past it: this token is refused and starts the fetch; the next ones are accepted.
        clock.now += 301
        assert post(token) == 401
        keys.wait()
        assert post(token) == 202

    with TestClient(create_app(app_settings, db, authenticator=auth)) as client:
        assert post(make_token()) == 202
        # Entra publishes a new key beside the old one and starts signing with it.
        jwks_file.write_text(json.dumps({"keys": [_jwk(signing_key, KID),
                                                  _jwk(other_key, "rolled")]}))
        refused_until_the_interval_passes(make_token(key=other_key, kid="rolled"))
        assert post(make_token()) == 202

        # A made-up key id right after: no new fetch, even though the file changed again.
        jwks_file.write_text(json.dumps({"keys": [_jwk(other_key, "rolled"),
                                                  _jwk(signing_key, "again")]}))
        assert post(make_token(kid="made-up")) == 401
        keys.wait()
        refused_until_the_interval_passes(make_token(kid="again"))
        # The old key is gone from the set: its tokens are refused now.
        assert post(make_token()) == 401


def test_a_failed_fetch_keeps_the_keys_held(
    app_settings: Settings, jwks_file: Path, make_token: Any, db: Database
) -> None:
    clock = Clock()
    auth = Authenticator(app_settings, jwks_refresh_s=300, clock=clock)
    keys = auth.signing_keys
    assert keys is not None
    with TestClient(create_app(app_settings, db, authenticator=auth)) as client:
        jwks_file.write_text("not json")
        clock.now += 301
        assert _post(client, make_token(kid="new")) == 401
        keys.wait()
        assert _post(client, make_token()) == 202
