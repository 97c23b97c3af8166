"""The Azure clients skip requests' environment look-ups (proxies, CA bundle, netrc) on every
call when the environment has none of them, and keep them when it has any."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.cloud.clients import Clients, env_settings_matter
from tests.engine.actions.conftest import FACTORY, cloud_settings


@pytest.mark.parametrize(("environ", "expected"), [
    ({"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8"}, False),
    ({"HTTPS_PROXY": "http://proxy:3128"}, True),
    ({"https_proxy": "http://proxy:3128"}, True),
    ({"ALL_PROXY": "socks5://proxy:1080"}, True),
    ({"NO_PROXY": "localhost"}, True),
    ({"REQUESTS_CA_BUNDLE": "/etc/ssl/ca.pem"}, True),
    ({"CURL_CA_BUNDLE": "/etc/ssl/ca.pem"}, True),
    ({"NETRC": "/root/.netrc"}, True),
])
def test_which_variables_make_the_environment_matter(
    environ: dict[str, str], expected: bool, tmp_path: Path
) -> None:
    assert env_settings_matter(environ, tmp_path) is expected


def test_ca_bundle_variables_do_not_matter_to_a_client_with_its_own_ca_file(
    tmp_path: Path,
) -> None:
    environ = {"REQUESTS_CA_BUNDLE": "/etc/ssl/ca.pem", "CURL_CA_BUNDLE": "/etc/ssl/ca.pem"}
    assert env_settings_matter(environ, tmp_path, own_ca=True) is False
    assert env_settings_matter({**environ, "HTTPS_PROXY": "http://p:3128"}, tmp_path,
                               own_ca=True) is True


@pytest.mark.parametrize("name", [".netrc", "_netrc"])
def test_a_netrc_file_in_home_makes_it_matter(name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_text("machine example.com login a password b\n")
    assert env_settings_matter({"PATH": "/usr/bin"}, tmp_path) is True


def _trust_env(client: Any) -> bool:
    transport = client._client._pipeline._transport
    transport.open()
    return bool(transport.session.trust_env)


def test_the_adf_client_follows_the_environment(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                 "no_proxy", "ALL_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                 "NETRC"):
        monkeypatch.delenv(name, raising=False)
    clean = Clients(cloud_settings(sandbox))
    proxied = Clients(cloud_settings(sandbox))
    try:
        assert _trust_env(clean.adf(clean.adf_route(FACTORY))) is False  # read when built
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
        assert _trust_env(proxied.adf(proxied.adf_route(FACTORY))) is True
    finally:
        clean.close()
        proxied.close()
