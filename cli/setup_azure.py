"""The Azure Monitor side of connecting Remediator: action groups and alert rules as templates.

:func:`build` turns the command line into an :class:`AlertSet` (every name, scope, metric,
dimension and query decided here, in Python, where it can be tested); :func:`render` writes it
out through the Jinja templates of ``deploy/azure/`` as Bicep and as ARM JSON, which hold
layout only.

The webhook credential never appears in a rendered file: the action group's service URI is
assembled at deployment from a ``@secure()`` parameter (ARM: ``securestring``) that the
printed ``az deployment group create`` command takes from an environment variable.
"""

from __future__ import annotations

import json
import re  # re: resource names from the command line only, never event text
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jinja2

from engine.errors import ConfigError

__all__ = [
    "TEMPLATES",
    "ActionGroup",
    "AlertSet",
    "AzureTargets",
    "LogAlert",
    "MetricAlert",
    "SecretParam",
    "apply_commands",
    "build",
    "default_templates",
    "render",
]

TEMPLATES = Path(__file__).resolve().parents[1] / "deploy" / "azure"
"""Where the templates live in a source checkout (``--templates`` points elsewhere)."""


def default_templates() -> Path:
    """The source checkout's ``deploy/azure``, else ``./deploy/azure`` (the image's /app)."""
    local = Path.cwd() / "deploy" / "azure"
    return TEMPLATES if TEMPLATES.is_dir() or not local.is_dir() else local

Auth = Literal["key", "basic", "entra"]

_BASIC_PARAM = "webhookPassword"
_BASIC_ENV = "REMEDIATOR_BASIC_PASSWORD"


def _key_param(endpoint: str) -> str:
    """``webhookApiKeyAzureMonitor``: each receiver's key is its own parameter, so that each
    action group's URL carries a key that opens only its receiver."""
    return "webhookApiKey" + "".join(part.capitalize() for part in endpoint.split("-"))


def _key_env(endpoint: str) -> str:
    """``REMEDIATOR_RECEIVER_KEY_AZURE_MONITOR``: the shell variable the deploy command reads."""
    return "REMEDIATOR_RECEIVER_KEY_" + endpoint.upper().replace("-", "_")

_ADF_METRICS = (
    ("PipelineFailedRuns", "pipeline-failed", "A pipeline run of {f} failed."),
    ("ActivityFailedRuns", "activity-failed", "An activity run of {f} failed."),
    ("TriggerFailedRuns", "trigger-failed", "A trigger run of {f} failed."),
)
_ADF_LOG_DIMENSIONS = ("_ResourceId", "PipelineName", "PipelineRunId", "ActivityName",
                       "ErrorCode", "FailureType")
_SYNAPSE_LOG_DIMENSIONS = ("_ResourceId", "PipelineName", "RunId")
_FUNCTION_DIMENSIONS = ("cloud_RoleName", "operation_Name", "problemId", "type", "outerMessage")


@dataclass(frozen=True)
class AzureTargets:
    """What ``remediator setup azure`` was asked to connect."""

    subscription: str
    resource_group: str
    url: str
    factories: tuple[str, ...] = ()
    synapse: tuple[str, ...] = ()
    function_apps: tuple[str, ...] = ()
    app_insights: str = ""
    log_workspace: str = ""
    auth: Auth = "key"
    basic_user: str = "azure-monitor"
    entra_object_id: str = ""
    entra_identifier_uri: str = ""
    tenant_id: str = ""


@dataclass(frozen=True)
class ActionGroup:
    """One action group with one webhook receiver posting to ``endpoint``.

    The service URI is ``uri_prefix + <secret parameter> + uri_suffix``; with Entra ID auth
    there is no secret and the URI is ``uri_prefix`` alone.
    """

    symbol: str
    name: str
    short_name: str
    endpoint: str
    uri_prefix: str
    uri_suffix: str
    secret_param: str | None
    entra: dict[str, str] | None


@dataclass(frozen=True)
class SecretParam:
    """One ``@secure()`` deployment parameter: its name, description and the shell variable
    that the printed deploy command takes it from."""

    name: str
    description: str
    env: str


@dataclass(frozen=True)
class MetricAlert:
    """A metric alert rule on one resource, split by ``dimensions`` (name -> values)."""

    symbol: str
    name: str
    description: str
    scope: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, tuple[str, ...]], ...]
    action_group: ActionGroup
    severity: int = 2


@dataclass(frozen=True)
class LogAlert:
    """A log search alert (``scheduledQueryRules``, kind LogAlert), one alert per row group."""

    symbol: str
    name: str
    description: str
    scope: str
    query: str
    dimensions: tuple[str, ...]
    action_group: ActionGroup
    severity: int = 2


@dataclass(frozen=True)
class AlertSet:
    """Everything one deployment creates, plus the settings the commands need."""

    targets: AzureTargets
    action_groups: tuple[ActionGroup, ...]
    metric_alerts: tuple[MetricAlert, ...]
    log_alerts: tuple[LogAlert, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def secret_params(self) -> tuple[SecretParam, ...]:
        """The ``@secure()`` parameters: one API key per receiver (``key``), the basic user's
        password (``basic``), none with Entra ID auth."""
        t = self.targets
        if t.auth == "basic":
            return (SecretParam(_BASIC_PARAM,
                                f"The password of the basic-auth user {t.basic_user}.",
                                _BASIC_ENV),)
        if t.auth != "key":
            return ()
        return tuple(
            SecretParam(_key_param(ag.endpoint),
                        f"The API key of receiver /{ag.endpoint} (one of "
                        f"[receivers.{ag.endpoint}] api_keys).", _key_env(ag.endpoint))
            for ag in self.action_groups)


def _arm_id(t: AzureTargets, provider: str, name: str) -> str:
    return (f"/subscriptions/{t.subscription}/resourceGroups/{t.resource_group}"
            f"/providers/{provider}/{name}")


def _kql(value: str) -> str:
    """A KQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _action_group(t: AzureTargets, key: str, endpoint: str) -> ActionGroup:
    base = t.url.rstrip("/")
    name = f"ag-remediator-{key}"
    short = f"remed-{key}"[:12]
    if t.auth == "key":
        return ActionGroup(f"ag_{key}", name, short, endpoint, f"{base}/{endpoint}?api_key=",
                           "", _key_param(endpoint), None)
    if t.auth == "basic":
        parts = urlsplit(base)
        return ActionGroup(f"ag_{key}", name, short, endpoint,
                           f"{parts.scheme}://{t.basic_user}:",
                           f"@{parts.netloc}{parts.path}/{endpoint}", _BASIC_PARAM, None)
    entra = {"objectId": t.entra_object_id, "identifierUri": t.entra_identifier_uri}
    if t.tenant_id:
        entra["tenantId"] = t.tenant_id
    return ActionGroup(f"ag_{key}", name, short, endpoint, f"{base}/{endpoint}", "", None, entra)


def _check(t: AzureTargets) -> None:
    if not (t.factories or t.synapse or t.function_apps):
        raise ConfigError("setup azure: name at least one --factory, --synapse or --function-app")
    parts = urlsplit(t.url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"setup azure: --url must be an absolute URL, got {t.url!r}")
    if parts.username or parts.password or parts.query:
        raise ConfigError("setup azure: --url must carry no credentials or query string; "
                          "the credential is a deployment parameter")
    if t.auth == "entra" and not (t.entra_object_id and t.entra_identifier_uri):
        raise ConfigError("setup azure: --auth entra needs --entra-object-id and "
                          "--entra-identifier-uri (the app registration of the receiver)")
    for name in (*t.factories, *t.synapse, *t.function_apps):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(f"setup azure: {name!r} is not a valid resource name")


def build(t: AzureTargets) -> AlertSet:
    """The action groups and alert rules for ``t``; ConfigError if the request is incomplete."""
    _check(t)
    groups: list[ActionGroup] = []
    metrics: list[MetricAlert] = []
    logs: list[LogAlert] = []
    notes: list[str] = []
    workspace = t.log_workspace
    if t.factories:
        ag = _action_group(t, "adf", "azure-monitor")
        groups.append(ag)
        for factory in t.factories:
            scope = _arm_id(t, "Microsoft.DataFactory/factories", factory)
            for metric, suffix, text in _ADF_METRICS:
                metrics.append(MetricAlert(
                    f"metric{len(metrics)}", f"remediator-adf-{factory}-{suffix}",
                    text.format(f=factory), scope, "Microsoft.DataFactory/factories", metric,
                    (("Name", ("*",)), ("FailureType", ("*",))), ag))
            where = f"\n| where _ResourceId =~ {_kql(scope)}" if workspace else ""
            logs.append(LogAlert(
                f"log{len(logs)}", f"remediator-adf-{factory}-activity-failed-log",
                f"A failed activity run of {factory}, with its pipeline run id and error code.",
                workspace or scope,
                f'ADFActivityRun\n| where Status == "Failed"{where}\n'
                f"| summarize FailedActivities = count() by {', '.join(_ADF_LOG_DIMENSIONS)}",
                _ADF_LOG_DIMENSIONS, ag))
    if t.synapse:
        ag = _action_group(t, "synapse", "synapse-monitor")
        groups.append(ag)
        for ws in t.synapse:
            scope = _arm_id(t, "Microsoft.Synapse/workspaces", ws)
            metrics.append(MetricAlert(
                f"metric{len(metrics)}", f"remediator-synapse-{ws}-pipeline-failed",
                f"A pipeline run of Synapse workspace {ws} failed.", scope,
                "Microsoft.Synapse/workspaces", "IntegrationPipelineRunsEnded",
                (("Result", ("Failed",)), ("FailureType", ("*",)), ("Pipeline", ("*",))),
                ag))
            where = f"\n| where _ResourceId =~ {_kql(scope)}" if workspace else ""
            logs.append(LogAlert(
                f"log{len(logs)}", f"remediator-synapse-{ws}-pipeline-failed-log",
                f"A failed pipeline run of Synapse workspace {ws}, with its run id.",
                workspace or scope,
                f'SynapseIntegrationPipelineRuns\n| where Status == "Failed"{where}\n'
                f"| summarize FailedRuns = count() by {', '.join(_SYNAPSE_LOG_DIMENSIONS)}",
                _SYNAPSE_LOG_DIMENSIONS, ag))
    if t.function_apps:
        ag = _action_group(t, "functions", "azure-functions-monitor")
        groups.append(ag)
        for app in t.function_apps:
            component = _arm_id(t, "Microsoft.Insights/components", t.app_insights or app)
            logs.append(LogAlert(
                f"log{len(logs)}", f"remediator-functions-{app}-exceptions",
                f"An exception in function app {app}.", component,
                f"exceptions\n| where cloud_RoleName == {_kql(app)}\n"
                f"| summarize Exceptions = count() by {', '.join(_FUNCTION_DIMENSIONS)}",
                _FUNCTION_DIMENSIONS, ag, severity=3))
    if (t.factories or t.synapse) and not workspace:
        notes.append("the log alerts are scoped to each factory/workspace itself: its "
                      "diagnostic settings must send the run logs to Log Analytics in "
                      "resource-specific tables (pass --log-workspace to get the commands)")
    return AlertSet(t, tuple(groups), tuple(metrics), tuple(logs), tuple(notes))


# -- rendering ---------------------------------------------------------------------------------

def _bicep(value: Any) -> str:
    """A scalar as a Bicep literal (strings single-quoted and escaped); the templates write
    arrays and objects out line by line, which every Bicep version reads."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
                   .replace("\r", "\\r").replace("\t", "\\t").replace("${", "\\${"))
        return f"'{escaped}'"
    raise TypeError(f"no Bicep literal for {type(value).__name__}")


def _arm_literal(value: str) -> str:
    """A string literal inside an ARM template expression."""
    return "'" + value.replace("'", "''") + "'"


def _uri_bicep(ag: ActionGroup) -> str:
    """The receiver's service URI in Bicep: the secret parameter interpolated, never inlined."""
    if ag.secret_param is None:
        return _bicep(ag.uri_prefix)
    return (_bicep(ag.uri_prefix)[:-1] + "${" + ag.secret_param + "}"
            + _bicep(ag.uri_suffix)[1:])


def _uri_arm(ag: ActionGroup) -> str:
    """The receiver's service URI in ARM JSON: a concat() with ``parameters('...')``."""
    if ag.secret_param is None:
        return ag.uri_prefix
    parts = [_arm_literal(ag.uri_prefix), f"parameters({_arm_literal(ag.secret_param)})"]
    if ag.uri_suffix:
        parts.append(_arm_literal(ag.uri_suffix))
    return f"[concat({', '.join(parts)})]"


def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
        autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["bicep"] = _bicep
    env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False)
    env.filters["uri_bicep"] = _uri_bicep
    env.filters["uri_arm"] = _uri_arm
    return env


def render(alerts: AlertSet, templates: Path | None = None) -> dict[str, str]:
    """The Bicep and ARM JSON texts: ``{"remediator-alerts.bicep": ..., ".json": ...}``.

    Raises ConfigError if a template is missing or the ARM output is not JSON (a template bug
    that must not reach ``az``).
    """
    templates = templates or default_templates()
    env = _environment(templates)
    context = {"alerts": alerts, "secret_params": alerts.secret_params}
    try:
        bicep = env.get_template("alerts.bicep.j2").render(context)
        arm = env.get_template("alerts.json.j2").render(context)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(f"setup azure: template {exc.name} not found in {templates}") from exc
    try:
        parsed = json.loads(arm)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"setup azure: alerts.json.j2 rendered invalid JSON: {exc}") from exc
    return {
        "remediator-alerts.bicep": bicep,
        "remediator-alerts.json": json.dumps(parsed, indent=2, ensure_ascii=False) + "\n",
    }


def apply_commands(alerts: AlertSet, out: Path) -> list[str]:
    """The shell commands that deploy the rendered files (and, for the log alerts, send the
    run logs to Log Analytics when ``--log-workspace`` was given)."""
    t = alerts.targets
    lines = []
    params = alerts.secret_params
    for param in params:
        if t.auth == "key":
            endpoint = param.env.removeprefix("REMEDIATOR_RECEIVER_KEY_").lower().replace(
                "_", "-")
            what = f"one of [receivers.{endpoint}] api_keys (that receiver's key only)"
        else:
            what = f"the password of basic user {t.basic_user!r}"
        lines.append(f"# {param.env}: {what}; set it in the shell, never in a file")
    head = (f"az deployment group create --subscription {t.subscription} "
            f"--resource-group {t.resource_group} --name remediator-alerts")
    tail = (" --parameters " + " ".join(f"{p.name}=${p.env}" for p in params)) if params else ""
    lines.append(f"{head} --template-file {out / 'remediator-alerts.bicep'}{tail}")
    lines.append("# or, without Bicep:")
    lines.append(f"{head} --template-file {out / 'remediator-alerts.json'}{tail}")
    if t.log_workspace:
        categories = {"Microsoft.DataFactory/factories": ("ActivityRuns", "PipelineRuns",
                                                          "TriggerRuns"),
                      "Microsoft.Synapse/workspaces": ("IntegrationPipelineRuns",
                                                       "IntegrationActivityRuns")}
        for provider, names in (("Microsoft.DataFactory/factories", t.factories),
                                ("Microsoft.Synapse/workspaces", t.synapse)):
            logs = json.dumps([{"category": c, "enabled": True} for c in categories[provider]],
                              separators=(",", ":"))
            for name in names:
                lines.append(
                    f"az monitor diagnostic-settings create --name remediator "
                    f"--resource {_arm_id(t, provider, name)} --workspace {t.log_workspace} "
                    f"--export-to-resource-specific true --logs '{logs}'")
    return lines


def targets_from(values: dict[str, Any]) -> AzureTargets:
    """An :class:`AzureTargets` from the command's options (tuples for the repeated ones)."""
    return AzureTargets(**{k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str)
                           else v for k, v in values.items()})
