"""API keys per receiver (issue 14, item 4): a key scoped to one receiver opens only it; the
global ``api_keys`` keep working where a receiver has none of its own; a key that opens several
receivers (or /api) is named at start; config errors name the key's path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from engine.config import ReceiverSettings, Secret, Settings, load_settings
from engine.errors import ConfigError
from engine.store.db import Database
from receivers.app import create_app
from receivers.auth import Authenticator
from tests.fixtures.common import assert_wrapped, load_sample

AZURE = load_sample("seed/adf-action-group-alert.json")
DBX = load_sample("databricks/databricks-job-on-failure.json")
AZMON_KEY = "rk-azmon-41c2"
DBX_KEY = "rk-dbx-77e0"
GLOBAL_KEY = "rk-global-9a1d"
ADVICE = ("a key leaked from one sender opens them all; give each receiver its own keys "
          "([receivers.<name>] api_keys, or REMEDIATOR_RECEIVER_KEYS_<NAME>)")


def _settings(tmp_path: Path, **over: Any) -> Settings:
    return Settings(db=str(tmp_path / "keys.db"), admin_keys=(Secret("ak-admin-0c3f"),), **over)


def _status(client: TestClient[Any], path: str, key: str, body: Any) -> int:
    """The status of a POST of ``body`` to ``path`` with ``key`` as the api_key parameter."""
    return client.post(path, params={"api_key": key}, json=body).status_code


def test_a_key_scoped_to_azure_monitor_opens_nothing_else(tmp_path: Path, db: Database) -> None:
    settings = _settings(tmp_path, receivers={
        "azure-monitor": ReceiverSettings(auth=("api_key",), api_keys=(Secret(AZMON_KEY),)),
        "databricks-monitor": ReceiverSettings(api_keys=(Secret(DBX_KEY),))})
    with TestClient(create_app(settings, db)) as client:
        assert _status(client, "/azure-monitor", AZMON_KEY, AZURE) == 202
        assert client.post("/azure-monitor", headers={"x-api-key": AZMON_KEY},
                           json=AZURE).status_code == 202
        for path, body in (("/databricks-monitor", DBX), ("/synapse-monitor", AZURE),
                           ("/azure-functions-monitor", AZURE)):
            refused = client.post(path, params={"api_key": AZMON_KEY}, json=body)
            assert (refused.status_code, refused.json()) == (401, {"error": "unauthorized"})
        assert _status(client, "/databricks-monitor", DBX_KEY, DBX) == 202
        assert _status(client, "/azure-monitor", DBX_KEY, AZURE) == 401
        assert client.get("/api/events", headers={"x-api-key": AZMON_KEY}).status_code == 401


def test_the_global_keys_still_open_receivers_without_keys_of_their_own(
        tmp_path: Path, db: Database) -> None:
    settings = _settings(tmp_path, api_keys=(Secret(GLOBAL_KEY),), receivers={
        "azure-monitor": ReceiverSettings(api_keys=(Secret(AZMON_KEY),))})
    with TestClient(create_app(settings, db)) as client:
        assert _status(client, "/synapse-monitor", GLOBAL_KEY, AZURE) == 202
        assert _status(client, "/databricks-monitor", GLOBAL_KEY, DBX) == 202
        assert _status(client, "/azure-monitor", GLOBAL_KEY, AZURE) == 401


def test_start_up_names_every_key_that_opens_several_receivers_or_the_api(tmp_path: Path) -> None:
    shared = _settings(tmp_path, api_keys=(Secret(GLOBAL_KEY), Secret("")))
    assert Authenticator(shared).key_scope_warnings() == [
        "api_keys[0] opens 4 receivers (/azure-monitor, /synapse-monitor, "
        f"/azure-functions-monitor, /databricks-monitor): {ADVICE}"]
    reused = _settings(tmp_path, receivers={
        "azure-monitor": ReceiverSettings(api_keys=(Secret(AZMON_KEY),)),
        "synapse-monitor": ReceiverSettings(api_keys=(Secret(DBX_KEY), Secret(AZMON_KEY))),
        "azure-functions-monitor": ReceiverSettings(auth=("basic",)),
        "databricks-monitor": ReceiverSettings(api_keys=(Secret("ak-admin-0c3f"),))})
    assert Authenticator(reused).key_scope_warnings() == [
        f"receivers.azure-monitor.api_keys[0] opens 2 receivers (/azure-monitor, "
        f"/synapse-monitor): {ADVICE}",
        "receivers.databricks-monitor.api_keys[0] is also an admin key: a receiver's key "
        "opens /api"]
    scoped = _settings(tmp_path, api_keys=(Secret(GLOBAL_KEY),), receivers={
        name: ReceiverSettings(api_keys=(Secret(f"rk-{name}"),))
        for name in ("azure-monitor", "synapse-monitor", "azure-functions-monitor")} | {
        "databricks-monitor": ReceiverSettings(auth=("basic",))})
    assert Authenticator(scoped).key_scope_warnings() == []


def test_receiver_keys_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(None, env={
        "REMEDIATOR_RECEIVER_KEYS_AZURE_MONITOR": f" {AZMON_KEY} , rk-next ",
        "REMEDIATOR_RECEIVER_KEYS_DATABRICKS_MONITOR": DBX_KEY})
    assert [k.reveal() for k in settings.receiver_keys("azure-monitor")] == [AZMON_KEY,
                                                                              "rk-next"]
    assert [k.reveal() for k in settings.receiver_keys("databricks-monitor")] == [DBX_KEY]
    assert settings.receiver_keys("synapse-monitor") == ()


def test_the_environment_refines_the_file(tmp_path: Path) -> None:
    config = tmp_path / "remediator.toml"
    config.write_text('[receivers.azure-monitor]\nauth = ["api_key"]\napi_keys = ["old"]\n')
    settings = load_settings(config, env={"REMEDIATOR_RECEIVER_KEYS_AZURE_MONITOR": "new"})
    receiver = settings.receiver("azure-monitor")
    assert (receiver.auth, [k.reveal() for k in receiver.api_keys or ()]) == (
        ("api_key",), ["new"])


@pytest.mark.parametrize(("toml", "env", "message"), [
    ('[receivers.databricks-monitor]\nauth = ["basic"]\napi_keys = ["k"]\n', {},
     "receivers.databricks-monitor.api_keys: set, but auth ['basic'] does not allow api_key"),
    ("", {"REMEDIATOR_RECEIVER_KEYS_DATABRICKS": "k"},
     "REMEDIATOR_RECEIVER_KEYS_DATABRICKS: unknown receiver 'databricks'; expected one of "
     "REMEDIATOR_RECEIVER_KEYS_AZURE_MONITOR, REMEDIATOR_RECEIVER_KEYS_SYNAPSE_MONITOR, "
     "REMEDIATOR_RECEIVER_KEYS_AZURE_FUNCTIONS_MONITOR, "
     "REMEDIATOR_RECEIVER_KEYS_DATABRICKS_MONITOR"),
])
def test_config_errors_name_the_key_path(tmp_path: Path, toml: str, env: dict[str, str],
                                         message: str) -> None:
    config = tmp_path / "remediator.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env=env)
    assert str(raised.value) == message.format(path=config)


@pytest.mark.parametrize(("toml", "ours", "mentions"), [
    ('[receivers.azure-monitor]\napi_keys = ["env:RK_NOT_SET_X"]\n',
     "{path}: environment variable RK_NOT_SET_X is not set",
     ("$.receivers.azure-monitor.api_keys[0]",)),
    ('[receivers.databricks-monitor]\napi_keys = ["k", 7]\n', "{path}: ",
     ("str", "int", "$.receivers.databricks-monitor.api_keys[1]")),
    ('[receivers.synapse-monitor]\napi_key = ["k"]\n', "{path}: ",
     ("api_key", "$.receivers.synapse-monitor")),
])
def test_config_errors_in_the_file_name_the_file_and_the_key_path(
        tmp_path: Path, toml: str, ours: str, mentions: tuple[str, ...]) -> None:
    config = tmp_path / "remediator.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env={})
    assert_wrapped(str(raised.value), ours.format(path=config), *mentions)
