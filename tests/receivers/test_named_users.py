"""Named admin users (``[http.users]``): what the configuration takes and refuses, and how a
login is checked (a hash per unknown name too, each success remembered)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from engine.config import HttpSettings, Secret, Settings, load_settings
from engine.errors import ConfigError
from receivers.auth import ADMIN, Authenticator, Unauthorized
from receivers.passwords import hash_password

PASSWORD = "alice's own password"
HASH = hash_password(PASSWORD, cost=(1024, 8, 1))
RULES = ("not a password hash of `remediator hash-password` (scrypt$N$r$p$salt$hash, N a "
         "power of 2 from 1024 to 1048576, r up to 32, p up to 4, N*r up to 8388608)")


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(("users", "message"), [
    ({"alice smith": HASH}, "users: 'alice smith': a user name is 1 to 64 letters, digits and "
                            ". _ @ -"),
    ({"alice": PASSWORD}, f"users.alice: {RULES}"),
    ({"alice": HASH.replace("scrypt$1024$", "scrypt$2097152$")}, f"users.alice: {RULES}"),
    ({"alice": HASH.replace("scrypt$1024$", "scrypt$1000$")}, f"users.alice: {RULES}"),
])
def test_the_configuration_refuses_what_is_not_a_name_and_a_hash(
        tmp_path: Path, users: dict[str, str], message: str) -> None:
    config = tmp_path / "r.toml"
    config.write_text("[http.users]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in users.items()))
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert str(caught.value) == f"{config}: {message} - at `$.http`"
    assert PASSWORD not in str(caught.value)


def test_named_users_from_the_environment_keep_the_file_s_http_limits(tmp_path: Path) -> None:
    config = tmp_path / "r.toml"
    config.write_text("[http]\nmax_connections = 50\n")
    settings = load_settings(config, env={"REMEDIATOR_ADMIN_USERS": f"alice={HASH},bob={HASH}"})
    assert (settings.http.max_connections, sorted(settings.http.users)) == (50, ["alice", "bob"])
    assert str(settings.http.users["alice"]) == "********"
    with pytest.raises(ConfigError, match=r"^REMEDIATOR_ADMIN_USERS: expected "
                                          r"name=hash\[,name=hash\]$"):
        load_settings(env={"REMEDIATOR_ADMIN_USERS": HASH})


def test_a_login_costs_one_hash_then_none_and_unknown_names_cost_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Authenticator(Settings(http=HttpSettings(users={"alice": Secret(HASH)})))
    assert [p for p in auth.problems() if "/api" in p] == []  # named users alone open /api
    real = hashlib.scrypt
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    assert auth.hashing_needed(basic("alice", PASSWORD))
    assert auth.check(ADMIN, basic("alice", PASSWORD), {}).name == "alice"
    assert not auth.hashing_needed(basic("alice", PASSWORD))
    assert auth.check(ADMIN, basic("alice", PASSWORD), {}).name == "alice"
    assert len(calls) == 1
    for user, password in (("alice", "wrong"), ("mallory", PASSWORD)):
        with pytest.raises(Unauthorized):
            auth.check(ADMIN, basic(user, password), {})
    assert len(calls) == 3  # a wrong password and an unknown name: one hash each
    with pytest.raises(Unauthorized):  # the shared key is not configured
        auth.check(ADMIN, {"x-api-key": PASSWORD}, {})


def test_an_unknown_name_costs_what_a_configured_users_check_costs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The users' hashes carry their own cost; an unknown name was checked at the default
    cost (2^15), so with hashes made at another cost the time told which names exist."""
    cheaper = hash_password(PASSWORD, cost=(2048, 4, 1))
    authenticator = Authenticator(Settings(http=HttpSettings(users={
        "alice": Secret(cheaper), "bob": Secret(HASH)})))
    costs: list[tuple[int, int, int]] = []
    real = hashlib.scrypt

    def counted(password: bytes, **kw: Any) -> bytes:
        costs.append((kw["n"], kw["r"], kw["p"]))
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    for user in ("alice", "mallory"):
        with pytest.raises(Unauthorized):
            authenticator.check(ADMIN, basic(user, "a wrong password"), {})
    assert costs == [(2048, 4, 1), (2048, 4, 1)]


def test_the_shared_key_never_waits_for_a_hash() -> None:
    """Made-up names each cost a hash, two at a time: the shared admin key as basic auth's
    password (a dashboard login) was sent to the same queue, behind every made-up name."""
    authenticator = Authenticator(Settings(admin_keys=(Secret("the-shared-admin-key"),),
                                           http=HttpSettings(users={"alice": Secret(HASH)})))
    assert not authenticator.hashing_needed(basic("ops", "the-shared-admin-key"))
    assert authenticator.hashing_needed(basic("mallory", "a guess"))
    assert authenticator.hashing_needed(basic("alice", PASSWORD))
    assert authenticator.check(ADMIN, basic("alice", PASSWORD), {}).name == "alice"
    assert not authenticator.hashing_needed(basic("alice", PASSWORD))  # verified once
