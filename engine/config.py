"""Settings: where things are, which credentials to take, how the service behaves.

Loaded from a TOML file, then overridden by ``REMEDIATOR_*`` environment variables. Secrets are
never written in the file itself if it can be helped: a secret value may be ``env:NAME`` (read
from the environment) or ``file:/path`` (read from a file, e.g. a mounted Key Vault secret).
Every secret is held in a :class:`Secret`, which prints masked, so that a settings object can
be logged or shown without leaking.
"""

from __future__ import annotations

import os
import re  # re: settings values and msgspec's messages about them; never event text
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from engine.errors import ConfigError

__all__ = [
    "AZURE_MONITOR_APP_ID",
    "RECEIVERS",
    "RECEIVER_KEYS_ENV",
    "RESERVED_ACTOR",
    "AdfCloudSettings",
    "AzureCredentialSettings",
    "CloudSettings",
    "DatabricksCloudSettings",
    "DatabricksPollSettings",
    "EngineSettings",
    "EntraSettings",
    "HttpSettings",
    "IntakeSettings",
    "LlmSettings",
    "NotificationSettings",
    "PollerSettings",
    "ReceiverSettings",
    "RetentionSettings",
    "Secret",
    "Settings",
    "SynapseCloudSettings",
    "WebhookTarget",
    "load_settings",
]

AZURE_MONITOR_APP_ID = "461e8683-5575-4561-ac7f-899cc907d62a"
"""The app id of Azure Monitor's service principal, the caller of a secure webhook."""

RECEIVERS: tuple[str, ...] = (
    "azure-monitor", "synapse-monitor", "azure-functions-monitor", "databricks-monitor"
)
AuthMethod = Literal["api_key", "basic", "entra"]

_HOST = re.compile(
    r"(?:[A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?"
)
"""An ``allowed_hosts`` entry: a host name or IP address, with an optional port."""
RESERVED_ACTOR = "engine"
"""The audit log's actor for what the engine did: no person logs in under it."""
_USER = re.compile(r"[A-Za-z0-9._@-]{1,64}")
"""A named admin user (``[http.users]``)."""
_HASH = re.compile(r"scrypt\$(?P<n>\d{1,8})\$(?P<r>\d{1,2})\$(?P<p>\d)"
                   r"\$[A-Za-z0-9+/]{16,64}={0,2}\$[A-Za-z0-9+/]{32,128}={0,2}")
"""A password hash of receivers/passwords.py: ``scrypt$N$r$p$SALT$HASH``."""


class Secret:
    """A credential that never prints: ``str()`` and ``repr()`` give ``'********'``.

    Call :meth:`reveal` at the one place the clear value is needed (a comparison, an SDK call).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The clear value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class EntraSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Microsoft Entra ID bearer tokens of the Azure Monitor secure webhook.

    ``jwks_file`` (a JSON Web Key Set on disk) or ``jwks_url`` gives the signing keys (loaded at
    start; loaded again in the background when a token names a key not held, as when Entra
    rolls its keys, at most every 5 minutes); the token must come from ``tenant_id``, be meant for
    ``audience``, be requested by one of ``allowed_app_ids`` and carry ``required_role``.
    """

    tenant_id: str
    audience: str
    jwks_file: str = ""
    jwks_url: str = ""
    allowed_app_ids: tuple[str, ...] = (AZURE_MONITOR_APP_ID,)
    required_role: str = ""
    issuers: tuple[str, ...] = ()

    def accepted_issuers(self) -> tuple[str, ...]:
        """The issuers that ``tenant_id`` signs as (v1 and v2 tokens), unless set explicitly."""
        if self.issuers:
            return self.issuers
        return (
            f"https://sts.windows.net/{self.tenant_id}/",
            f"https://login.microsoftonline.com/{self.tenant_id}/v2.0",
        )


class ReceiverSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Which authentication methods one receiver (``[receivers.<name>]``) takes, and its own
    API keys.

    ``api_keys`` scopes keys to this receiver: a key leaked from one sender's webhook URL
    (Azure Monitor puts it in the URL) then opens only that receiver. Unset (``None``), the
    receiver takes the global ``api_keys``, which open every receiver that allows
    ``api_key`` (kept for compatibility; a warning at start says so). Also
    ``REMEDIATOR_RECEIVER_KEYS_<NAME>`` (``AZURE_MONITOR``, ``SYNAPSE_MONITOR``,
    ``AZURE_FUNCTIONS_MONITOR``, ``DATABRICKS_MONITOR``), comma-separated.
    """

    auth: tuple[AuthMethod, ...] = ("api_key", "basic")
    api_keys: tuple[Secret, ...] | None = None


CredentialType = Literal["client_secret", "managed_identity", "workload_identity", "azure_cli",
                         "static"]


class AzureCredentialSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                              kw_only=True):
    """One explicit Azure credential; there is deliberately no "default" chain.

    ``DefaultAzureCredential`` probes the instance metadata address and can hang for minutes,
    so the type is always named. ``authority`` with ``disable_instance_discovery`` points
    ``client_secret`` at another token endpoint (a sovereign cloud, the sandbox). ``static``
    sends ``token`` as it is and exists only for the sandbox emulators and the tests: never
    use it against Azure.
    """

    type: CredentialType
    tenant_id: str = ""
    client_id: str = ""
    client_secret: Secret | None = None
    authority: str = ""
    disable_instance_discovery: bool = False
    token_file: str = ""
    token: Secret | None = None

    def missing(self) -> tuple[str, ...]:
        """The fields its type needs that are empty: the credential cannot be built (checked
        at start by ``validate --config`` and ``serve``, refused at first use)."""
        needs = {"client_secret": ("tenant_id", "client_id", "client_secret"),
                 "workload_identity": ("tenant_id", "client_id", "token_file"),
                 "static": ("token",)}.get(self.type, ())
        return tuple(name for name in needs if not getattr(self, name))


class AdfCloudSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Access to the Data Factories of one subscription and resource group.

    ``factories`` names the factories this entry serves; ``("*",)`` serves any factory of
    ``subscription_id``/``resource_group``. ``ca_file`` trusts a private CA (the sandbox).
    """

    subscription_id: str
    resource_group: str
    credential: AzureCredentialSettings
    factories: tuple[str, ...] = ("*",)
    base_url: str = "https://management.azure.com"
    ca_file: str = ""
    timeout: float = 30.0
    retries: int = 2


class SynapseCloudSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Access to one Synapse workspace's data plane (``https://<ws>.dev.azuresynapse.net``)."""

    workspace: str
    endpoint: str
    credential: AzureCredentialSettings
    ca_file: str = ""
    timeout: float = 30.0
    retries: int = 2


class DatabricksCloudSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                              kw_only=True):
    """Access to one Databricks workspace; ``workspace_id`` routes a webhook to it.

    ``auth`` is ``pat`` (``token``) or ``oauth-m2m`` (``client_id`` and ``client_secret``).
    ``retry_timeout`` bounds the SDK's own retries; it must not be 0 (the SDK reads 0 as 300 s).
    """

    host: str
    workspace_id: str = ""
    auth: Literal["pat", "oauth-m2m"] = "pat"
    token: Secret | None = None
    client_id: str = ""
    client_secret: Secret | None = None
    timeout: float = 30.0
    retry_timeout: float = 60.0

    def missing(self) -> tuple[str, ...]:
        """The fields ``auth`` needs that are empty (``token`` for ``pat``, ``client_id`` and
        ``client_secret`` for ``oauth-m2m``)."""
        needs = ("token",) if self.auth == "pat" else ("client_id", "client_secret")
        return tuple(name for name in needs if not getattr(self, name))


class WebhookTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A URL that takes a JSON POST (a chat channel, a ticket system's webhook).

    The URL is a :class:`Secret`: chat webhook URLs carry their credential in the path.
    """

    url: Secret
    headers: dict[str, Secret] = msgspec.field(default_factory=dict)
    ca_file: str = ""
    format: Literal["json", "slack", "teams"] = "json"
    """``slack``: incoming-webhook blocks; ``teams``: a workflow webhook's Adaptive Card."""


class CloudSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every cloud the actions and the enrichment may call, each entry under its own name.

    ``allowed_hosts``: the hosts (``name`` or ``name:port``) that a playbook's ``url:`` may
    post to, besides the hosts of ``channels`` and ``ticket``; any other is refused.
    """

    adf: dict[str, AdfCloudSettings] = msgspec.field(default_factory=dict)
    synapse: dict[str, SynapseCloudSettings] = msgspec.field(default_factory=dict)
    databricks: dict[str, DatabricksCloudSettings] = msgspec.field(default_factory=dict)
    channels: dict[str, WebhookTarget] = msgspec.field(default_factory=dict)
    ticket: WebhookTarget | None = None
    http_timeout: float = 10.0
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in self.allowed_hosts:
            if not _HOST.fullmatch(entry):
                raise ValueError(f"allowed_hosts: {entry[:100]!r} is not a host or host:port")


class LlmSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The LLM of the root-cause analysis (``[llm]``); without this section RCA is offline.

    ``provider`` ``openai`` (``base_url`` optional), ``azure`` (``base_url`` is the resource
    endpoint; ``deployment`` and ``api_version`` required) or ``compatible`` (any
    OpenAI-compatible ``base_url``). ``timeout`` and ``max_retries`` go to the client, so a
    hang is bounded. An analysis is reused for ``cache_ttl`` seconds per fingerprint; at most
    ``calls_per_hour`` calls are made (counted in the database).
    """

    provider: Literal["openai", "azure", "compatible"] = "openai"
    base_url: str = ""
    model: str = "gpt-4o-mini"
    api_key: Secret | None = None
    api_version: str = ""
    deployment: str = ""
    timeout: float = 30.0
    max_retries: int = 1
    cache_ttl: float = 24 * 3600.0
    calls_per_hour: int = 30

    def __post_init__(self) -> None:
        if self.provider == "azure" and not (self.base_url and self.deployment
                                             and self.api_version):
            raise ValueError("provider azure needs base_url, deployment and api_version")
        if self.provider == "compatible" and not self.base_url:
            raise ValueError("provider compatible needs base_url")
        if self.timeout <= 0 or self.max_retries < 0 or self.calls_per_hour < 0:
            raise ValueError("timeout must be > 0, max_retries and calls_per_hour >= 0")

    def missing(self) -> tuple[str, ...]:
        """``("api_key",)`` when the provider needs a key and none is set: OpenAI and Azure
        OpenAI refuse every call without one (a ``compatible`` server may take none)."""
        return ("api_key",) if self.provider != "compatible" and not self.api_key else ()


class NotificationSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                           kw_only=True):
    """One notification per incident state change (``[notifications]``).

    ``channels`` name entries of ``[clouds.channels]`` (whose ``format`` decides the shape);
    ``states`` limits which new states are announced (empty: all); ``text`` is a Jinja2
    template over ``incident``, ``event``, ``rca`` and ``link``. A failed post is retried
    ``retries`` times, ``backoff_s`` doubling each time.
    """

    channels: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    text: str = ""
    every_s: float = 30.0
    retries: int = 5
    backoff_s: float = 30.0


class EngineSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[engine]``: tuning of the worker and the scheduler (times in seconds).

    ``retry_limit`` retries of an action that failed in a retryable way (429, 5xx, timeout),
    each after ``retry_backoff_s * 2**n`` (at most ``retry_backoff_max_s``, at least the
    server's Retry-After); then the incident escalates. ``breaker_threshold`` consecutive
    failed remediations of a rule on one target open its circuit breaker there for
    ``breaker_cool_off_s``, then one trial may run (a rule's ``breaker:`` overrides both;
    docs/PLAYBOOKS.md, "Circuit breakers"). A firing event no rule matches
    joins the incident of the same failure (fingerprint and target) escalated as unmatched
    less than ``rejoin_window_s`` ago instead of opening a new one (one RCA, one
    notification per storm); 0 turns that off. ``threads`` events run at once (one per
    target at a time), ``batch`` at most are claimed and unfinished: an event mostly waits on
    its cloud round trips, so threads are cheap (docs/BENCHMARKS.md, "End to end").
    An event claimed ``max_claims`` times whose lease ran out again (its stages crashed,
    stalled or failed in a way worth retrying each time) is parked instead of being claimed
    again (engine/runtime/deadletter.py). A firing alert older than ``max_alert_age_s`` (by the time
    its sender gives) is recorded but never remediated, and enrichment looks for a metric
    alert's failed runs no further back than that (0: no age limit; the window is still at
    most 24 hours).
    """

    breaker_threshold: int = 5
    breaker_cool_off_s: int = 30 * 60
    approval_timeout_s: int = 24 * 3600
    event_lease_s: int = 300
    action_lease_s: int = 900
    lock_lease_s: int = 12 * 3600
    retry_limit: int = 3
    retry_backoff_s: int = 60
    retry_backoff_max_s: int = 3600
    verify_timeout_s: int = 3600
    verify_interval_s: int = 60
    threads: int = 16  # each event waits on 1-3 cloud round trips; CPU is not the limit
    batch: int = 32
    rejoin_window_s: int = 6 * 3600
    max_claims: int = 5
    max_alert_age_s: int = 24 * 3600

    def __post_init__(self) -> None:
        if self.max_claims < 1:
            raise ValueError(f"max_claims must be at least 1, got {self.max_claims}")
        if self.max_alert_age_s < 0:
            raise ValueError(f"max_alert_age_s must be 0 (no limit) or more, got "
                             f"{self.max_alert_age_s}")
        if self.breaker_threshold < 1 or self.breaker_cool_off_s < 1:
            raise ValueError("breaker_threshold and breaker_cool_off_s must be at least 1")


class HttpSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[http]``: what one client connection may hold (bytes, seconds, count).

    A request head (request line and headers) larger than ``max_header_bytes`` is answered
    431 and its connection closed. A head must be complete ``header_timeout_s`` after the
    connection opened (on a reused connection: after its first byte), else 408 and closed; a
    body must be complete ``body_timeout_s`` after its head. A kept-alive connection with no
    request is closed after ``idle_timeout_s``. At most ``max_connections`` are open at once:
    past it, the longest-waiting connection with no request in progress is closed to make
    room, and if every one is busy the newcomer gets 503 (the limit is also held below the
    process's open-file limit, keeping room for the database and the cloud clients).
    """

    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 5.0
    max_connections: int = 1000
    users: dict[str, Secret] = msgspec.field(default_factory=dict)
    """``[http.users]``: the named admin users, name = password hash (``remediator
    hash-password``; as every secret, also ``env:NAME`` or ``file:/path``): each logs in to
    the dashboard and /api with basic auth under their own name, which the audit log records
    as who did it."""

    def __post_init__(self) -> None:
        for name, secret in self.users.items():
            stored = secret.reveal()
            if not _USER.fullmatch(name):
                raise ValueError(f"users: {name[:70]!r}: a user name is 1 to 64 letters, "
                                 "digits and . _ @ -")
            if name.lower() == RESERVED_ACTOR:
                raise ValueError(f"users: {name!r} is the engine's own name in the audit log: "
                                 "choose another")
            found = _HASH.fullmatch(stored)
            n, r, p = (int(found[g]) for g in ("n", "r", "p")) if found else (0, 0, 0)
            if not found or n & (n - 1) or not (2**10 <= n <= 2**20 and 1 <= r <= 32
                                                and 1 <= p <= 4 and n * r <= 2**23):
                raise ValueError(f"users.{name}: not a password hash of `remediator "
                                 "hash-password` (scrypt$N$r$p$salt$hash, N a power of 2 "
                                 "from 1024 to 1048576, r up to 32, p up to 4, N*r up to "
                                 "8388608)")
        if self.max_header_bytes < 1024:
            raise ValueError("max_header_bytes must be >= 1024")
        if min(self.header_timeout_s, self.body_timeout_s, self.idle_timeout_s) <= 0:
            raise ValueError("header_timeout_s, body_timeout_s and idle_timeout_s must be > 0")
        if self.max_connections < 1:
            raise ValueError("max_connections must be >= 1")


class DatabricksPollSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                             kw_only=True):
    """``[pollers.databricks.<name>]``, ``<name>`` being a ``[clouds.databricks]`` entry.

    ``clusters`` lists the cluster ids whose events are polled, or is ``"all"`` (every cluster
    that ``clusters/list`` shows); ``reconcile_runs`` turns on the missed-failure reconciler
    over ``jobs/runs/list``.
    """

    clusters: tuple[str, ...] | Literal["all"] = ()
    reconcile_runs: bool = True


class PollerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[pollers]``: what Databricks cannot push, fetched periodically (times in seconds).

    The first poll of a cluster looks ``cluster_lookback_s`` back; the run reconciler always
    looks at least ``runs_lookback_s`` back (a run is listed by its start time, and a long run
    fails long after it started).
    """

    enabled: bool = True
    cluster_events_every_s: float = 60.0
    runs_every_s: float = 300.0
    cluster_lookback_s: int = 3600
    runs_lookback_s: int = 24 * 3600
    databricks: dict[str, DatabricksPollSettings] = msgspec.field(default_factory=dict)


class RetentionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How long raw payloads are kept (days; 0 keeps them forever) and how often retention
    runs. Events, incidents and the audit log are kept: the chain must stay whole."""

    raw_payload_days: int = 30
    every_s: float = 3600.0


class IntakeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[intake]``: how long storing a webhook may take (seconds).

    A webhook whose commit has not completed within ``commit_timeout_s`` is answered 503 with
    Retry-After (below the 10 s an Azure Monitor action group waits for its first answer). The
    commit may still complete: the sender's retry is then a duplicate answered with the first
    event's id. ``/ready`` answers 503 while a commit has run longer than that or while the
    last write failed; when no write succeeded in the last ``ready_probe_s``, it writes a
    heartbeat row through the same writer to find out (0: on every call).
    """

    commit_timeout_s: float = 8.0
    ready_probe_s: float = 5.0

    def __post_init__(self) -> None:
        if self.commit_timeout_s <= 0 or self.ready_probe_s < 0:
            raise ValueError("commit_timeout_s must be > 0 and ready_probe_s >= 0")


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the service needs to run. Defaults give the embedded, dry-run setup."""

    host: str = "127.0.0.1"
    port: int = 8080
    db: str = "remediator.db"
    playbooks: str = "playbooks"
    live: bool = False
    public_url: str = ""
    body_limit: int = 1024 * 1024
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"
    api_keys: tuple[Secret, ...] = ()
    admin_keys: tuple[Secret, ...] = ()
    basic_users: dict[str, Secret] = msgspec.field(default_factory=dict)
    receivers: dict[str, ReceiverSettings] = msgspec.field(default_factory=dict)
    entra: EntraSettings | None = None
    sync_full: bool = False
    clouds: CloudSettings = msgspec.field(default_factory=CloudSettings)
    retention: RetentionSettings = msgspec.field(default_factory=RetentionSettings)
    engine: EngineSettings = msgspec.field(default_factory=EngineSettings)
    pollers: PollerSettings = msgspec.field(default_factory=PollerSettings)
    llm: LlmSettings | None = None
    notifications: NotificationSettings = msgspec.field(default_factory=NotificationSettings)
    intake: IntakeSettings = msgspec.field(default_factory=IntakeSettings)

    def receiver(self, name: str) -> ReceiverSettings:
        """The auth settings of receiver ``name`` (its defaults if not configured)."""
        return self.receivers.get(name, ReceiverSettings())

    def receiver_keys(self, name: str) -> tuple[Secret, ...]:
        """The API keys receiver ``name`` takes: its own ``api_keys`` if set, else the global
        ``api_keys`` (none if it does not allow ``api_key``)."""
        receiver = self.receiver(name)
        if "api_key" not in receiver.auth:
            return ()
        return receiver.api_keys if receiver.api_keys is not None else self.api_keys


def _resolve_secret(value: str, where: str) -> Secret:
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return Secret(os.environ[name])
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            return Secret(path.read_text().strip())
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from exc
    return Secret(value)


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Secret:
        if isinstance(obj, Secret):
            return obj
        if isinstance(obj, str):
            try:
                return _resolve_secret(obj, "secret")
            except ConfigError as exc:
                # A ValueError, so that msgspec says where: `$.receivers.x.api_keys[0]`.
                raise ValueError(str(exc).removeprefix("secret: ")) from exc
        raise TypeError(f"Expected `str`, got `{type(obj).__name__}`")
    raise NotImplementedError


RECEIVER_KEYS_ENV = "REMEDIATOR_RECEIVER_KEYS_"
"""``REMEDIATOR_RECEIVER_KEYS_AZURE_MONITOR=k1,k2``: the keys of one receiver."""

_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.S)


def _receiver_keys_env(env: dict[str, str], raw: dict[str, Any]) -> None:
    """``REMEDIATOR_RECEIVER_KEYS_<NAME>`` into ``raw["receivers"][name]["api_keys"]``."""
    for key in sorted(env):
        if not key.startswith(RECEIVER_KEYS_ENV):
            continue
        name = key[len(RECEIVER_KEYS_ENV):].lower().replace("_", "-")
        if name not in RECEIVERS:
            expected = ", ".join(RECEIVER_KEYS_ENV + r.upper().replace("-", "_")
                                 for r in RECEIVERS)
            raise ConfigError(f"{key}: unknown receiver {name!r}; expected one of {expected}")
        receivers = raw.setdefault("receivers", {})
        if not isinstance(receivers, dict):
            raise ConfigError(f"{key}: receivers must be a table of receivers")
        entry = receivers.setdefault(name, {})
        if isinstance(entry, dict):
            entry["api_keys"] = _split(env[key])


def _check_receivers(raw: Any, where: str) -> None:
    """Each ``[receivers.<name>]`` on its own, so that an error names the receiver and the
    key (msgspec says ``$.receivers[...]`` for a key of a table)."""
    if not isinstance(raw, dict):
        return  # msgspec reports the type below
    for name, value in raw.items():
        try:
            msgspec.convert(value, ReceiverSettings, strict=False, dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            found = _AT.match(str(exc))
            message, path = (found["message"], found["path"]) if found else (str(exc), "")
            raise ConfigError(f"{where}: {message} - at `$.receivers.{name}{path}`") from exc


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """``REMEDIATOR_*`` variables as settings; lists are comma-separated."""
    out: dict[str, Any] = {}
    simple = {"host", "port", "db", "playbooks", "live", "public_url", "body_limit",
              "log_level", "log_format", "sync_full"}
    for field in simple:
        key = f"REMEDIATOR_{field.upper()}"
        if key in env:
            out[field] = env[key]
    if "REMEDIATOR_API_KEYS" in env:
        out["api_keys"] = _split(env["REMEDIATOR_API_KEYS"])
    if "REMEDIATOR_ADMIN_KEYS" in env:
        out["admin_keys"] = _split(env["REMEDIATOR_ADMIN_KEYS"])
    if "REMEDIATOR_BASIC_USERS" in env:
        users: dict[str, str] = {}
        for pair in _split(env["REMEDIATOR_BASIC_USERS"]):
            user, sep, password = pair.partition(":")
            if not sep or not user:
                raise ConfigError("REMEDIATOR_BASIC_USERS: expected user:password[,user:password]")
            users[user] = password
        out["basic_users"] = users
    if "REMEDIATOR_ADMIN_USERS" in env:
        named: dict[str, str] = {}
        for pair in _split(env["REMEDIATOR_ADMIN_USERS"]):
            user, sep, stored = pair.partition("=")
            if not sep or not user or "$" in user:  # a hash alone: never echo a part of it
                raise ConfigError("REMEDIATOR_ADMIN_USERS: expected name=hash[,name=hash]")
            named[user.strip()] = stored.strip()
        out["http"] = {**out.get("http", {}), "users": named}
    return out


def load_settings(
    path: str | Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the TOML file (if any), apply the environment, then explicit ``overrides``.

    Raises :class:`ConfigError` naming the file and the field when anything is wrong.
    """
    env = dict(os.environ) if env is None else env
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    for key, value in _env_overrides(env).items():  # [http] from the file keeps its limits
        raw[key] = {**raw[key], **value} if key == "http" and isinstance(raw.get(key), dict) \
            else value
    _receiver_keys_env(env, raw)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    _check_receivers(raw.get("receivers"), str(path or "settings"))
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path or 'settings'}: {exc}") from exc
    for name in settings.pollers.databricks:
        if name not in settings.clouds.databricks:
            raise ConfigError(f"pollers.databricks.{name}: no [clouds.databricks.{name}] entry")
    for name in settings.receivers:
        if name not in RECEIVERS:
            raise ConfigError(f"receivers.{name}: unknown receiver; expected one of {RECEIVERS}")
        if "entra" in settings.receivers[name].auth and settings.entra is None:
            raise ConfigError(f"receivers.{name}: auth 'entra' needs an [entra] section")
        if (settings.receivers[name].api_keys is not None
                and "api_key" not in settings.receivers[name].auth):
            raise ConfigError(f"receivers.{name}.api_keys: set, but auth "
                              f"{list(settings.receivers[name].auth)} does not allow api_key")
    for name in settings.notifications.channels:
        if name not in settings.clouds.channels:
            raise ConfigError(f"notifications.channels: {name!r} is not in [clouds.channels]")
    return settings
