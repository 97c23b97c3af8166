"""``remediator drill SOURCE --error-code CODE``: rehearse a failure end to end.

It makes the failure in the sandbox (a pipeline run that failed with CODE, a Databricks run
that failed with it, a cluster that terminated with it: ``POST /_sandbox/failures/<kind>``,
docs/SANDBOX.md), sends the webhook its sender would send, in the sender's own shape (the
samples of ``remediator send-test``), to a running Remediator whose ``[clouds]`` point at that
sandbox (``remediator sandbox --config-out``), and reads back what the engine decided: the
event as enriched, the rule, the incident and its actions. So a playbook for
``SqlFailedToConnect`` or ``DRIVER_UNREACHABLE`` can be exercised without a hand-made request.

The engine never imports the sandbox: this talks to it over HTTP. Exit codes: 0 the engine
decided (whatever it decided), 1 it did not within ``--timeout`` or the webhook was refused or
the event was parked, 2 bad usage (an unknown source or code, no sandbox to use).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import httpx

from cli import readback
from cli.client import ADMIN_KEY_ENV, API_KEY_ENV, DEFAULT_URL, URL_ENV, receiver_refused
from cli.sandbox import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE_ID
from cli.send_test import ENDPOINTS, fresh_payload, load_sample
from engine.config import Settings, load_settings
from engine.errors import ConfigError
from engine.known_codes import (
    DATABRICKS_RUN_CODES,
    DATABRICKS_TERMINATION_CODES,
    known_codes,
)
from engine.text.redact import redact_text

__all__ = ["DRILL_SOURCES", "SHAPES", "drill", "run_drill"]

DRILL_SOURCES = ("adf", "synapse", "databricks")
"""What the sandbox emulates (Functions and Application Insights it does not)."""

SHAPES: dict[str, tuple[str, ...]] = {
    "adf": ("log", "metric"),
    "synapse": ("metric",),
    "databricks-job": ("job", "task"),
    "databricks-cluster": ("cluster",),
}
"""The webhook shapes a drill can send, the first the default: ADF's log search alert on
ADFActivityRun (with the run id) or its metric alert (enrichment finds the run); Synapse's
metric alert; Databricks' job or task failure notification; for a cluster, the in-house
``cluster.terminated`` body (Databricks has no cluster webhook: the poller reads the events)."""

SYNAPSE_WORKSPACE = "syn-contoso-prod"
_POLL_S = 0.2


class DrillError(Exception):
    """The drill cannot go on; ``code`` is the exit code (1 failed, 2 bad usage)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Sandbox:
    """Where the emulator of one source answers, and the names the settings give it."""

    url: str
    verify: ssl.SSLContext | bool = True
    subscription: str = SUBSCRIPTION
    resource_group: str = RESOURCE_GROUP
    workspace: str = SYNAPSE_WORKSPACE
    workspace_id: str = WORKSPACE_ID


@dataclass
class _Report:
    """What the drill did and what the engine decided (``--json`` prints it)."""

    drill: dict[str, Any]
    failure: dict[str, Any] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] = field(default_factory=dict)
    rule: dict[str, Any] | None = None
    incident: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    decided: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.decided, "drill": self.drill, "failure": self.failure,
                "webhook": self.webhook, "event": self.event, "rule": self.rule,
                "incident": self.incident, "actions": self.actions}


# -- what to drill ------------------------------------------------------------------------


def _target_kind(source: str, pipeline: str | None, job: str | None,
                 cluster: str | None) -> tuple[str, str]:
    """``(kind, name)``: ``pipeline`` for ADF and Synapse, ``job`` or ``cluster`` for
    Databricks; DrillError (2) for a source the sandbox does not emulate or a wrong target."""
    if source not in DRILL_SOURCES:
        raise DrillError(f"cannot drill {source!r}: the sandbox emulates "
                         f"{', '.join(DRILL_SOURCES)}", 2)
    given = {k: v for k, v in (("pipeline", pipeline), ("job", job), ("cluster", cluster))
             if v is not None}
    allowed = ("pipeline",) if source in ("adf", "synapse") else ("job", "cluster")
    if len(given) != 1 or next(iter(given)) not in allowed:
        names = " or ".join(f"--{k} NAME" for k in allowed)
        raise DrillError(f"{source} needs exactly one of {names}", 2)
    kind, name = next(iter(given.items()))
    if not name.strip():
        raise DrillError(f"--{kind}: expected a name", 2)
    return kind, name.strip()


def _check_code(source: str, kind: str, code: str, custom: bool) -> None:
    """A code the sender of ``source`` produces for ``kind`` (else DrillError 2, with the
    nearest known code); ``custom`` takes any code (an ADF Fail activity's own)."""
    if not code.strip():
        raise DrillError("--error-code: expected a code", 2)
    if custom:
        if source != "databricks":
            return
        raise DrillError("--custom: Databricks sets its own codes; drill one of them", 2)
    if source == "databricks":
        known = DATABRICKS_TERMINATION_CODES | (DATABRICKS_RUN_CODES if kind == "job" else set())
    else:
        known = known_codes(source)
    if code in known:
        return
    import difflib

    close = difflib.get_close_matches(code, sorted(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    own = "; a code of your own (an ADF Fail activity's): add --custom" if not close \
        and source != "databricks" else ""
    what = "a cluster termination" if kind == "cluster" else f"a {source} {kind} failure"
    raise DrillError(f"unknown error code {code!r} for {what}{hint}{own}", 2)


# -- the sandbox --------------------------------------------------------------------------


def _sandbox(source: str, config: str | None, sandbox_url: str | None,
             ca_file: str | None) -> _Sandbox:
    """The emulator of ``source``: from ``--sandbox-url``, else from the settings file that
    ``remediator sandbox --config-out`` writes (the URLs of its ``[clouds]``)."""
    settings: Settings | None = None
    if config is not None:
        try:
            settings = load_settings(config, env={})
        except ConfigError as exc:
            raise DrillError(str(exc), 2) from exc
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) \
        if ca_file else True
    if sandbox_url:
        return _Sandbox(sandbox_url.rstrip("/"), verify)
    if settings is None:
        raise DrillError("no sandbox to make the failure in: pass --config with the settings "
                         "that `remediator sandbox --config-out` writes, or --sandbox-url", 2)
    clouds = settings.clouds
    entries: dict[str, Any] = {"adf": clouds.adf, "synapse": clouds.synapse,
                               "databricks": clouds.databricks}
    if not entries[source]:
        raise DrillError(f"{config} has no [clouds.{source}] entry to find the sandbox by", 2)
    entry = next(iter(entries[source].values()))
    ca = ca_file or getattr(entry, "ca_file", "")
    verify = ssl.create_default_context(cafile=ca) if ca else True
    if source == "adf":
        return _Sandbox(entry.base_url.rstrip("/"), verify, entry.subscription_id,
                        entry.resource_group)
    if source == "synapse":
        return _Sandbox(entry.endpoint.rstrip("/"), verify, workspace=entry.workspace)
    return _Sandbox(entry.host.rstrip("/"), verify, workspace_id=entry.workspace_id or WORKSPACE_ID)


def _make_failure(client: httpx.Client, sandbox: _Sandbox, kind: str,
                  body: dict[str, Any]) -> dict[str, Any]:
    url = f"{sandbox.url}/_sandbox/failures/{kind}"
    try:
        answer = client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise DrillError(f"cannot reach the sandbox at {sandbox.url}: "
                         f"{redact_text(str(exc))}") from exc
    try:
        data = answer.json()
    except ValueError:
        data = None
    if answer.status_code == 200 and isinstance(data, dict):
        return data
    if isinstance(data, dict) and "error" in data and answer.status_code == 400:
        raise DrillError(f"the sandbox refused the failure: {data['error']}", 2)
    raise DrillError(f"{sandbox.url} is not the sandbox: POST /_sandbox/failures/{kind} "
                     f"answered {answer.status_code}")


# -- the webhook ----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _dimension(condition: dict[str, Any], name: str, value: str) -> None:
    for dim in condition.get("dimensions") or []:
        if dim.get("name") == name:
            dim["value"] = value


def _azure_target(payload: dict[str, Any], target_id: str, name: str, window: bool) -> None:
    essentials = payload["data"]["essentials"]
    essentials["alertTargetIDs"] = [target_id]
    essentials["configurationItems"] = [name]
    if window:  # the window enrichment looks for failed runs in: around now
        condition = payload["data"]["alertContext"]["condition"]
        now = _now()
        condition["windowStartTime"] = _iso(now - timedelta(minutes=5))
        condition["windowEndTime"] = _iso(now + timedelta(minutes=1))


def _adf_webhook(shape: str, sandbox: _Sandbox, factory: str, failure: dict[str, Any],
                 ) -> dict[str, Any]:
    run, activity = failure["run"], failure["activity"]
    factory_id = (f"/subscriptions/{sandbox.subscription}/resourcegroups/"
                  f"{sandbox.resource_group}/providers/microsoft.datafactory/factories/{factory}")
    payload = fresh_payload("adf", shape)
    _azure_target(payload, factory_id, factory, window=True)
    context = payload["data"]["alertContext"]
    condition = context["condition"]["allOf"][0]
    if shape == "metric":
        _dimension(condition, "Name", run["pipelineName"])
        _dimension(condition, "FailureType", activity["failure_type"])
        return payload
    context["properties"] = {"PipelineName": run["pipelineName"],
                             "PipelineRunId": run["runId"], "ErrorCode": activity["error_code"]}
    for name, value in (("_ResourceId", factory_id), ("PipelineName", run["pipelineName"]),
                        ("PipelineRunId", run["runId"]), ("ActivityName", activity["activity"]),
                        ("ErrorCode", activity["error_code"]),
                        ("FailureType", activity["failure_type"])):
        _dimension(condition, name, value)
    return payload


def _synapse_webhook(sandbox: _Sandbox, failure: dict[str, Any]) -> dict[str, Any]:
    run, activity = failure["run"], failure["activity"]
    workspace_id = (f"/subscriptions/{sandbox.subscription}/resourcegroups/"
                    f"{sandbox.resource_group}/providers/microsoft.synapse/workspaces/"
                    f"{sandbox.workspace}")
    payload = fresh_payload("synapse", "metric")
    _azure_target(payload, workspace_id, sandbox.workspace, window=True)
    condition = payload["data"]["alertContext"]["condition"]["allOf"][0]
    _dimension(condition, "Pipeline", run["pipelineName"])
    _dimension(condition, "FailureType", activity["failure_type"])
    return payload


def _databricks_webhook(shape: str, sandbox: _Sandbox, failure: dict[str, Any],
                        ) -> dict[str, Any]:
    if shape == "cluster":
        cluster = failure["cluster"]
        payload = load_sample("databricks", "cluster")
        payload["timestamp"] = cluster.get("terminated_time") or int(_now().timestamp() * 1000)
        payload["cluster"] = {key: cluster.get(key) for key in (
            "cluster_id", "cluster_name", "state", "state_message", "termination_reason")}
        return payload
    payload = fresh_payload("databricks", shape)
    payload["workspace_id"] = sandbox.workspace_id
    payload["job"] = {"job_id": str(failure["job_id"]), "name": failure["job_name"]}
    if shape == "task":
        payload["task"] = {"task_key": failure["task_key"]}
        payload["run"] = {"run_id": str(failure["task_run_id"]),
                          "parent_run_id": str(failure["run_id"])}
    else:
        payload["run"] = {"run_id": str(failure["run_id"])}
    return payload


# -- the engine's answer ----------------------------------------------------------------------


def _outcome(client: httpx.Client, url: str, admin_key: str, report: _Report,
             event_id: str, timeout: float) -> None:
    try:
        found = readback.decision(client, url, admin_key, event_id, timeout)
    except readback.ReadbackError as exc:
        raise DrillError(str(exc)) from exc
    report.event, report.rule = found.event, found.rule
    report.incident, report.actions = found.incident, found.actions
    if found.event.get("state") == "parked":
        raise DrillError(f"the engine parked event {event_id}: {found.event.get('reason')}")
    report.decided = True


# -- the command ---------------------------------------------------------------------------


def _failure_body(source: str, kind: str, name: str, code: str, message: str | None,
                  sandbox: _Sandbox, factory: str) -> tuple[str, str, dict[str, Any]]:
    """``(service, failure kind, body)`` for the sandbox."""
    extra = {"message": message} if message else {}
    if source == "adf":
        return "adf", "pipeline-run", {"pipeline": name, "error_code": code,
                                       "subscription": sandbox.subscription,
                                       "resource_group": sandbox.resource_group,
                                       "factory": factory, **extra}
    if source == "synapse":
        return "synapse", "pipeline-run", {"pipeline": name, "error_code": code, **extra}
    if kind == "job":
        job = {"job_id": name} if name.isdigit() else {"job_name": name}
        return "databricks", "job-run", {"termination_code": code, **job, **extra}
    looks_like_id = len(name.split("-")) == 3 and name[:4].isdigit()
    cluster = {"cluster_id": name} if looks_like_id else {"cluster_name": name}
    return "databricks", "cluster", {"termination_code": code, **cluster, **extra}


def run_drill(
    source: str, error_code: str, url: str, *, pipeline: str | None = None,
    job: str | None = None, cluster: str | None = None, factory: str = "adf-contoso-prod",
    message: str | None = None, shape: str | None = None, custom: bool = False,
    key: str | None = None, basic: str | None = None, admin_key: str | None = None,
    config: str | None = None, sandbox_url: str | None = None, sandbox_ca: str | None = None,
    ca_file: str | None = None, timeout: float = 30.0, as_json: bool = False,
) -> int:
    """Make the failure, send its webhook, report what the engine decided; the exit code."""
    report = _Report(drill={"source": source, "error_code": error_code})
    try:
        if not 0 < timeout <= 3600:
            raise DrillError(f"--timeout: expected 0 < seconds <= 3600, got {timeout:g}", 2)
        kind, name = _target_kind(source, pipeline, job, cluster)
        report.drill.update({kind: name})
        _check_code(source, kind, error_code, custom)
        shapes = SHAPES[source if source != "databricks" else f"databricks-{kind}"]
        shape = shape or shapes[0]
        if shape not in shapes:
            raise DrillError(f"--sample: {source} {kind} sends {' or '.join(shapes)}", 2)
        report.drill["sample"] = shape
        if not admin_key:
            raise DrillError(f"an admin key is needed to read the outcome: --admin-key or "
                             f"${ADMIN_KEY_ENV}", 2)
        headers, auth = ({"x-api-key": key} if key else {}), None
        if basic:
            user, sep, password = basic.partition(":")
            if not sep or not user:
                raise DrillError("--basic: expected user:password", 2)
            auth = (user, password)
        sandbox = _sandbox(source, config, sandbox_url, sandbox_ca)
        service, failure_kind, body = _failure_body(source, kind, name, error_code, message,
                                                    sandbox, factory)
        with httpx.Client(timeout=10.0, verify=sandbox.verify) as cloud:
            report.failure = _make_failure(cloud, sandbox, failure_kind, body)
        report.failure["service"] = service
        if source == "adf":
            payload = _adf_webhook(shape, sandbox, factory, report.failure)
        elif source == "synapse":
            payload = _synapse_webhook(sandbox, report.failure)
        else:
            payload = _databricks_webhook(shape, sandbox, report.failure)
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        base = url.rstrip("/")
        target = f"{base}/{ENDPOINTS[source]}"
        with httpx.Client(timeout=10.0, verify=verify, follow_redirects=False) as client:
            try:
                answer = client.post(target, json=payload, headers=headers, auth=auth)
            except httpx.HTTPError as exc:
                raise DrillError(f"cannot reach {target}: {redact_text(str(exc))}") from exc
            report.webhook = {"url": target, "status": answer.status_code}
            if answer.status_code != 202:
                report.webhook["answer"] = redact_text(answer.text[:500])
                if answer.status_code == 401:
                    raise DrillError(f"POST {target} answered 401: {receiver_refused(base)}")
                raise DrillError(f"POST {target} answered {answer.status_code}: "
                                 f"{redact_text(answer.text[:300])}")
            receipt = answer.json()
            report.webhook.update(event_id=receipt.get("event_id"),
                                  duplicate=receipt.get("duplicate"))
            _outcome(client, base, admin_key, report, str(receipt.get("event_id")), timeout)
    except DrillError as exc:
        if as_json:
            click.echo(json.dumps({**report.as_json(), "error": str(exc)}, indent=2,
                                  default=str))
        else:
            _print(report)
        click.echo(f"remediator drill: {exc}", err=True)
        return exc.code
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, default=str))
    else:
        _print(report)
    return 0


def _print(report: _Report) -> None:
    drill = report.drill
    target = next((f"{k} {drill[k]}" for k in ("pipeline", "job", "cluster") if k in drill), "")
    if report.failure:
        click.echo(f"drill: {drill['source']} {drill['error_code']} on {target}")
        click.echo(f"  sandbox:  {_describe_failure(report.failure, drill['error_code'])}")
    if report.webhook:
        receipt = report.webhook.get("event_id") or report.webhook.get("answer", "")
        click.echo(f"  webhook:  POST {report.webhook['url']} ({drill.get('sample')}) -> "
                   f"{report.webhook['status']} {receipt}")
    event = report.event
    if event:
        code = event.get("error_code") or "none"
        if event.get("received_error_code") != event.get("error_code"):
            code += f" (received as {event.get('received_error_code') or 'none'})"
        click.echo(f"  event:    {event.get('state')}: {event.get('source')} {event.get('kind')}"
                   f" {event.get('status')} {event.get('resource')}, error code {code}")
    if not report.decided:
        return
    for line in readback.lines(readback.Decision(event=event, rule=report.rule,
                                                 incident=report.incident,
                                                 actions=report.actions)):
        click.echo(f"  {line}")


def _describe_failure(failure: dict[str, Any], code: str) -> str:
    if "run" in failure:
        activity = failure["activity"]
        wraps = f" wrapping {code}" if activity["error_code"] != code else ""
        return (f"run {failure['run']['runId']} of {failure['run']['pipelineName']} failed: "
                f"{activity['activity']} ({activity['activity_type']}) "
                f"{activity['error_code']}{wraps}")
    if "cluster" in failure:
        reason = failure["cluster"].get("termination_reason") or {}
        return (f"cluster {failure['cluster']['cluster_id']} terminated: "
                f"{reason.get('code')} ({reason.get('type')})")
    cause = failure.get("cluster_termination_code")
    return (f"run {failure['run_id']} of job {failure['job_id']} ({failure['job_name']}) "
            f"failed: {failure['termination_code']}"
            + (f", its cluster {failure['cluster_id']} terminated {cause}" if cause else ""))


@click.command("drill")
@click.argument("source")
@click.option("--error-code", required=True, help="The code to fail with (SqlFailedToConnect, "
              "DRIVER_UNREACHABLE, ...).")
@click.option("--pipeline", default=None, help="ADF or Synapse: the pipeline that fails.")
@click.option("--job", default=None, help="Databricks: the job (name or id) whose run fails.")
@click.option("--cluster", default=None,
              help="Databricks: the cluster (name or id) that terminates.")
@click.option("--url", envvar=URL_ENV, default=DEFAULT_URL, show_default=True,
              help=f"The running Remediator's base URL (default: ${URL_ENV}).")
@click.option("--key", envvar=API_KEY_ENV, default=None,
              help=f"Receiver API key; default ${API_KEY_ENV}.")
@click.option("--basic", envvar="REMEDIATOR_BASIC", default=None,
              help="user:password for basic auth; default $REMEDIATOR_BASIC.")
@click.option("--admin-key", envvar=ADMIN_KEY_ENV, default=None,
              help=f"Admin key to read the outcome; default ${ADMIN_KEY_ENV}.")
@click.option("--config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Settings whose [clouds] are the sandbox (`remediator sandbox "
                   "--config-out`): where to make the failure.")
@click.option("--sandbox-url", default=None, help="The emulator's URL, instead of --config.")
@click.option("--sandbox-ca", type=click.Path(dir_okay=False, exists=True), default=None,
              help="The sandbox's CA file (https emulators), with --sandbox-url.")
@click.option("--factory", default="adf-contoso-prod", show_default=True,
              help="ADF: the factory of the pipeline.")
@click.option("--message", default=None, help="The error message (default: the catalog's).")
@click.option("--sample", "shape", default=None,
              help="The webhook's shape: adf log|metric, synapse metric, databricks job|task.")
@click.option("--custom", is_flag=True,
              help="The code is your own (an ADF Fail activity's): do not check it.")
@click.option("--ca-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Trust this CA for --url (a private certificate).")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for the engine's decision.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def drill(ctx: click.Context, source: str, error_code: str, pipeline: str | None,
          job: str | None, cluster: str | None, url: str, key: str | None, basic: str | None,
          admin_key: str | None, config: str | None, sandbox_url: str | None,
          sandbox_ca: str | None, factory: str, message: str | None, shape: str | None,
          custom: bool, ca_file: str | None, timeout: float, as_json: bool) -> None:
    """Fail SOURCE with an error code in the sandbox, send the sender's webhook to a running
    Remediator and show what it decided."""
    ctx.exit(run_drill(source, error_code, url, pipeline=pipeline, job=job, cluster=cluster,
                       factory=factory, message=message, shape=shape, custom=custom, key=key,
                       basic=basic, admin_key=admin_key, config=config,
                       sandbox_url=sandbox_url, sandbox_ca=sandbox_ca, ca_file=ca_file,
                       timeout=timeout, as_json=as_json))

