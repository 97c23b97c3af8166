"""The cloud SDK clients, built once from the settings, lazily per factory or workspace.

:class:`Clients` is the only place that constructs an SDK client or an Azure credential. An
action or a look-up asks it for the entry that serves an event (routing by factory name and
subscription, Synapse workspace name, Databricks workspace id or host) and then for that
entry's client. Every client has short timeouts and bounded retries:

- Azure clients make one attempt per HTTP status (``retry_status=0``) and retry only
  connection failures: a 429 or 5xx comes back at once as a retryable error, and the worker
  waits for the next attempt durably (honouring Retry-After) instead of sleeping in a thread.
- The Databricks SDK retries 429/503 and connection errors itself, within
  ``retry_timeout`` seconds; :class:`BudgetClock` makes it give up at once, rather than sleep,
  when the server asks for a wait that does not fit in that budget.

Never ``DefaultAzureCredential`` or a credential chain: the type is named in the settings.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from engine.config import (
    AdfCloudSettings,
    AzureCredentialSettings,
    CloudSettings,
    DatabricksCloudSettings,
    SynapseCloudSettings,
    WebhookTarget,
)
from engine.errors import ConfigError, PermanentActionError

if TYPE_CHECKING:
    # The SDKs are imported where a client is built, never at import: the CLI commands that
    # make no cloud call (validate, test, simulate, schema, audit) start in a fraction of the
    # time, and only ``serve`` and the actions pay for them.
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.synapse.artifacts import ArtifactsClient
    from databricks.sdk import WorkspaceClient

__all__ = [
    "AdfRoute",
    "BudgetClock",
    "Clients",
    "DatabricksRoute",
    "StaticTokenCredential",
    "SynapseRoute",
    "azure_credential",
    "env_settings_matter",
]


def env_settings_matter(environ: Mapping[str, str] | None = None,
                        home: Path | None = None, *, own_ca: bool = False) -> bool:
    """Whether ``requests``' environment settings (``trust_env``) can change a call: a
    ``*_proxy``/``no_proxy`` variable, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (unless the
    client has its own CA file, ``own_ca``: then requests ignores them), ``NETRC`` or a
    netrc file. When none is there, the Azure clients skip them: ``requests`` would
    otherwise scan the environment and look for netrc files on every call (~1 ms of CPU per
    call here), to find nothing."""
    names = {name.lower() for name in (os.environ if environ is None else environ)}
    if any(name.endswith("_proxy") for name in names):
        return True
    if "netrc" in names or (not own_ca and names & {"requests_ca_bundle", "curl_ca_bundle"}):
        return True
    try:
        folder = Path.home() if home is None else home
    except RuntimeError:  # no home directory: requests finds no netrc either
        return False
    return any((folder / name).exists() for name in (".netrc", "_netrc"))


class StaticTokenCredential:
    """A fixed bearer token, for the sandbox emulators and the tests ONLY.

    It never expires and is never refreshed; against Azure use a real credential type.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        """Nothing to release."""


class BudgetClock:
    """The Databricks SDK's retry clock, which never sleeps past the retry budget.

    It has the two methods of ``databricks.sdk.clock.Clock`` (``time``, ``sleep``) without
    subclassing it, so that importing this module imports no SDK (the SDK only calls them).

    A wait that would end after the SDK's deadline is skipped and the clock jumps to that
    deadline instead, so the SDK raises its ``TimeoutError`` (chained to the 429 or 503, whose
    Retry-After we keep) at once and the worker schedules the retry.
    """

    def __init__(self, budget: float) -> None:
        self._budget = budget
        self._skipped = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        return time.time() + self._skipped

    def sleep(self, seconds: float) -> None:
        if seconds <= self._budget / 4:
            time.sleep(seconds)
            return
        with self._lock:
            self._skipped += self._budget + seconds


def azure_credential(cfg: AzureCredentialSettings, ca_file: str, where: str) -> TokenCredential:
    """The one credential that ``cfg`` names; :class:`ConfigError` if a field it needs is empty."""
    from azure.identity import (
        AzureCliCredential,
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    transport: dict[str, Any] = {"connection_verify": ca_file} if ca_file else {}

    missing = cfg.missing()
    if missing:
        raise ConfigError(f"{where}.credential: type {cfg.type!r} needs {', '.join(missing)}")
    if cfg.type == "client_secret":
        assert cfg.client_secret is not None
        extra: dict[str, Any] = {"authority": cfg.authority} if cfg.authority else {}
        return ClientSecretCredential(
            cfg.tenant_id, cfg.client_id, cfg.client_secret.reveal(),
            disable_instance_discovery=cfg.disable_instance_discovery, **extra, **transport,
        )
    if cfg.type == "managed_identity":
        if cfg.client_id:
            return ManagedIdentityCredential(client_id=cfg.client_id, **transport)
        return ManagedIdentityCredential(**transport)
    if cfg.type == "workload_identity":
        return WorkloadIdentityCredential(
            tenant_id=cfg.tenant_id, client_id=cfg.client_id, token_file_path=cfg.token_file,
            **transport,
        )
    if cfg.type == "azure_cli":
        return AzureCliCredential(tenant_id=cfg.tenant_id, process_timeout=15)
    assert cfg.token is not None
    return StaticTokenCredential(cfg.token.reveal())


@dataclass(frozen=True)
class AdfRoute:
    """The ``[clouds.adf.<name>]`` entry that serves one factory."""

    name: str
    settings: AdfCloudSettings


@dataclass(frozen=True)
class SynapseRoute:
    """The ``[clouds.synapse.<name>]`` entry of one Synapse workspace."""

    name: str
    settings: SynapseCloudSettings


@dataclass(frozen=True)
class DatabricksRoute:
    """The ``[clouds.databricks.<name>]`` entry of one Databricks workspace."""

    name: str
    settings: DatabricksCloudSettings


def _azure_transport(ca_file: str, timeout: float, retries: int) -> dict[str, Any]:
    """The azure-core options both Azure clients take: our CA and timeouts, ``retries``
    retries of a failed connection but none of a status or a read, and the environment's
    settings only where they can change a call (:func:`env_settings_matter`)."""
    return {
        "connection_verify": ca_file or True,
        "connection_timeout": timeout, "read_timeout": timeout,
        "retry_total": retries, "retry_status": 0, "retry_read": 0,
        "retry_backoff_factor": 0.5, "retry_backoff_max": 5,
        "use_env_settings": env_settings_matter(own_ca=bool(ca_file)),
    }


def _host(url: str) -> str:
    return urlsplit(url if "://" in url else f"https://{url}").netloc.lower()


class Clients:
    """Every SDK client the actions and look-ups use, built on first use and closed once.

    Thread-safe: the worker may run actions in several threads. ``close()`` at shutdown.
    """

    def __init__(self, clouds: CloudSettings) -> None:
        self.clouds = clouds
        self._lock = threading.Lock()
        self._built: dict[tuple[str, str], Any] = {}
        self._credentials: list[TokenCredential] = []

    # -- routing -------------------------------------------------------------------------

    def adf_route(self, factory: str, subscription: str = "", resource_group: str = "") -> AdfRoute:
        """The ADF entry that serves ``factory``: a named factory wins over ``*``.

        The subscription and resource group, when the event names them, must match too
        (case-insensitively: alert ids arrive lower-cased). Raises
        :class:`PermanentActionError` when no entry serves the factory.
        """
        best: AdfRoute | None = None
        for name, cfg in self.clouds.adf.items():
            if subscription and subscription.lower() != cfg.subscription_id.lower():
                continue
            if resource_group and resource_group.lower() != cfg.resource_group.lower():
                continue
            if factory.lower() in (f.lower() for f in cfg.factories):
                return AdfRoute(name, cfg)
            if "*" in cfg.factories and best is None:
                best = AdfRoute(name, cfg)
        if best is None:
            raise PermanentActionError(
                f"no [clouds.adf] entry serves factory {factory!r}"
                + (f" in subscription {subscription}" if subscription else "")
                + "; add one to the settings"
            )
        return best

    def synapse_route(self, workspace: str) -> SynapseRoute:
        """The Synapse entry of ``workspace`` (by its name, or by the entry's name)."""
        for name, cfg in self.clouds.synapse.items():
            if workspace.lower() in (cfg.workspace.lower(), name.lower()):
                return SynapseRoute(name, cfg)
        raise PermanentActionError(
            f"no [clouds.synapse] entry serves workspace {workspace!r}; add one to the settings"
        )

    def databricks_route(self, workspace_id: str = "", host: str = "") -> DatabricksRoute:
        """The Databricks entry by ``workspace_id``, else by ``host``.

        With neither given and exactly one workspace configured, that one. A workspace id
        that no entry names is refused rather than guessed.
        """
        entries = self.clouds.databricks
        if workspace_id:
            for name, cfg in entries.items():
                if cfg.workspace_id == str(workspace_id):
                    return DatabricksRoute(name, cfg)
        if host:
            for name, cfg in entries.items():
                if _host(cfg.host) == _host(host):
                    return DatabricksRoute(name, cfg)
        if not workspace_id and not host and len(entries) == 1:
            name, cfg = next(iter(entries.items()))
            return DatabricksRoute(name, cfg)
        wanted = f"workspace_id {workspace_id}" if workspace_id else f"host {host!r}"
        if not workspace_id and not host:
            wanted = "an event without workspace id (several workspaces are configured)"
        raise PermanentActionError(
            f"no [clouds.databricks] entry serves {wanted}; add one to the settings"
        )

    # -- clients -------------------------------------------------------------------------

    def _get(self, key: tuple[str, str], build: Any) -> Any:
        with self._lock:
            if key not in self._built:
                self._built[key] = build()
            return self._built[key]

    def _credential(self, cfg: AzureCredentialSettings, ca_file: str, where: str) -> Any:
        credential = azure_credential(cfg, ca_file, where)
        self._credentials.append(credential)
        return credential

    def adf(self, route: AdfRoute) -> DataFactoryManagementClient:
        """The Data Factory management client of ``route``."""
        cfg = route.settings

        def build() -> DataFactoryManagementClient:
            from azure.mgmt.datafactory import DataFactoryManagementClient

            credential = self._credential(cfg.credential, cfg.ca_file, f"clouds.adf.{route.name}")
            return DataFactoryManagementClient(
                credential, cfg.subscription_id, base_url=cfg.base_url,
                credential_scopes=[cfg.base_url.rstrip("/") + "/.default"],
                **_azure_transport(cfg.ca_file, cfg.timeout, cfg.retries),
            )

        return self._get(("adf", route.name), build)

    def synapse(self, route: SynapseRoute) -> ArtifactsClient:
        """The Synapse data-plane (artifacts) client of ``route``."""
        cfg = route.settings

        def build() -> ArtifactsClient:
            from azure.synapse.artifacts import ArtifactsClient

            credential = self._credential(
                cfg.credential, cfg.ca_file, f"clouds.synapse.{route.name}"
            )
            return ArtifactsClient(
                credential, cfg.endpoint, **_azure_transport(cfg.ca_file, cfg.timeout, cfg.retries)
            )

        return self._get(("synapse", route.name), build)

    def databricks(self, route: DatabricksRoute) -> WorkspaceClient:
        """The Databricks workspace client of ``route`` (PAT or OAuth machine-to-machine)."""
        cfg = route.settings
        where = f"clouds.databricks.{route.name}"

        def build() -> WorkspaceClient:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.config import Config

            if cfg.retry_timeout <= 0:
                raise ConfigError(f"{where}.retry_timeout: must be > 0 (the SDK reads 0 as 300 s)")
            common: dict[str, Any] = {
                "host": cfg.host,
                "http_timeout_seconds": cfg.timeout,
                "retry_timeout_seconds": max(1, round(cfg.retry_timeout)),
                "clock": BudgetClock(cfg.retry_timeout),
            }
            missing = cfg.missing()
            if missing:
                raise ConfigError(f"{where}: auth {cfg.auth!r} needs {' and '.join(missing)}")
            if cfg.auth == "pat":
                assert cfg.token is not None
                auth = {"token": cfg.token.reveal(), "auth_type": "pat"}
            else:
                assert cfg.client_secret is not None
                auth = {"client_id": cfg.client_id, "client_secret": cfg.client_secret.reveal(),
                        "auth_type": "oauth-m2m"}
            try:
                return WorkspaceClient(config=Config(**common, **auth))
            except ValueError as exc:  # the SDK's only signal for a configuration it refuses
                raise ConfigError(f"{where}: the Databricks SDK refuses the settings") from exc

        return self._get(("databricks", route.name), build)

    def http(self, target: WebhookTarget | None = None) -> httpx.Client:
        """An httpx client with the configured timeout (trusting ``target.ca_file`` if set)."""
        ca = target.ca_file if target is not None else ""

        def build() -> httpx.Client:
            return httpx.Client(
                timeout=httpx.Timeout(self.clouds.http_timeout), verify=ca or True,
                follow_redirects=False,
            )

        return self._get(("http", ca), build)

    def close(self) -> None:
        """Close every client and credential built so far; safe to call twice."""
        with self._lock:
            built, self._built = self._built, {}
            credentials, self._credentials = self._credentials, []
        for client in built.values():
            close = getattr(client, "close", None)
            if close is not None:
                close()
        for credential in credentials:
            close = getattr(credential, "close", None)
            if close is not None:
                close()
