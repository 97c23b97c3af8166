"""``remediator send-test``: post one real-shaped failure to a running Remediator, anywhere.

It checks the whole path a sender takes (DNS, TLS, ingress, authentication, the parser, the
inbox) with a payload in the sender's own shape, from the samples shipped in the package. Each
send gets fresh ids (alert id, run id), so it is never a duplicate of an earlier test. With an
admin key it reads the event back from ``GET /api/events/{id}``.
"""

from __future__ import annotations

import copy
import json
import secrets
import uuid
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import click
import httpx

from engine.text.redact import redact_text

__all__ = ["ENDPOINTS", "SAMPLES", "fresh_payload", "load_sample", "run_send_test", "send_test"]

ENDPOINTS: dict[str, str] = {
    "adf": "azure-monitor",
    "synapse": "synapse-monitor",
    "functions": "azure-functions-monitor",
    "databricks": "databricks-monitor",
}
"""Source -> the receiver path its sender posts to."""

SAMPLES: dict[str, tuple[str, ...]] = {
    "adf": ("log", "metric", "seed"),
    "synapse": ("metric",),
    "functions": ("log",),
    "databricks": ("job", "task", "seed"),
}
"""Source -> the sample names it has; the first is the default."""


def load_sample(source: str, name: str) -> dict[str, Any]:
    """The shipped sample ``<source>-<name>.json`` (package data of ``cli.samples``)."""
    text = resources.files("cli.samples").joinpath(f"{source}-{name}.json").read_text()
    return json.loads(text)


def _new_run_id(old: Any) -> Any:
    """A fresh numeric run id, of the same JSON type as ``old`` (Databricks sends both)."""
    value = 900_000_000_000 + secrets.randbelow(99_000_000_000)
    return str(value) if isinstance(old, str) else value


def _fresh_azure(payload: dict[str, Any], now: datetime) -> None:
    essentials = payload["data"]["essentials"]
    prefix = essentials["alertId"].rsplit("/", 1)[0]
    essentials["alertId"] = f"{prefix}/{uuid.uuid4()}"
    if "originAlertId" in essentials:
        essentials["originAlertId"] = str(uuid.uuid4())
    essentials["firedDateTime"] = now.isoformat().replace("+00:00", "Z")
    run_id = str(uuid.uuid4())
    context = payload["data"].get("alertContext") or {}
    properties = context.get("properties") or {}
    if "PipelineRunId" in properties:
        properties["PipelineRunId"] = run_id
    for condition in (context.get("condition") or {}).get("allOf") or []:
        for dimension in condition.get("dimensions") or []:
            if dimension.get("name") in ("PipelineRunId", "RunId"):
                dimension["value"] = run_id


def _fresh_databricks(payload: dict[str, Any], now: datetime) -> None:
    run = payload["run"]
    old = run["run_id"]
    run["run_id"] = _new_run_id(old)
    if "parent_run_id" in run:
        run["parent_run_id"] = _new_run_id(run["parent_run_id"])
    if "timestamp" in payload:
        payload["timestamp"] = int(now.timestamp() * 1000)


def fresh_payload(source: str, name: str, now: datetime | None = None) -> dict[str, Any]:
    """The sample with new unique ids (so the inbox never takes it for a duplicate) and the
    current time where the sender would put it."""
    payload = copy.deepcopy(load_sample(source, name))
    now = now or datetime.now(UTC)
    if source == "databricks":
        _fresh_databricks(payload, now)
    else:
        _fresh_azure(payload, now)
    return payload


def _show(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json(), indent=2, sort_keys=True)
    except ValueError:
        return redact_text(response.text[:2000])


def run_send_test(source: str, url: str, *, sample: str | None = None, key: str | None = None,
                  basic: str | None = None, admin_key: str | None = None,
                  ca_file: str | None = None, timeout: float = 10.0) -> int:
    """Post the sample, print the answer (and the event it became); 0 on 202, else 1.
    2 for bad input (unknown sample, malformed --basic)."""
    name = sample or SAMPLES[source][0]
    if name not in SAMPLES[source]:
        click.echo(f"remediator send-test: {source} has no sample {name!r}; choose one of "
                   f"{', '.join(SAMPLES[source])}", err=True)
        return 2
    headers: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    if key:
        headers["x-api-key"] = key
    if basic:
        user, sep, password = basic.partition(":")
        if not sep or not user:
            click.echo("remediator send-test: --basic: expected user:password", err=True)
            return 2
        auth = (user, password)
    target = f"{url.rstrip('/')}/{ENDPOINTS[source]}"
    payload = fresh_payload(source, name)
    with httpx.Client(timeout=timeout, verify=ca_file or True, follow_redirects=False) as client:
        try:
            response = client.post(target, json=payload, headers=headers, auth=auth)
        except httpx.HTTPError as exc:
            click.echo(f"remediator send-test: cannot reach {target}: "
                       f"{redact_text(str(exc))}", err=True)
            return 1
        click.echo(f"POST {target} ({source}/{name}) -> {response.status_code}")
        click.echo(_show(response))
        if response.status_code != 202:
            return 1
        event_id = response.json().get("event_id")
        if not admin_key or not event_id:
            return 0
        try:
            event = client.get(f"{url.rstrip('/')}/api/events/{event_id}",
                               headers={"x-api-key": admin_key})
        except httpx.HTTPError as exc:
            click.echo(f"remediator send-test: cannot read the event back: "
                       f"{redact_text(str(exc))}", err=True)
            return 0
        click.echo(f"GET /api/events/{event_id} -> {event.status_code}")
        if event.status_code == 200:
            view = {k: v for k, v in event.json().items() if k != "raw"}
            click.echo(json.dumps(view, indent=2, sort_keys=True))
        else:
            click.echo(_show(event))
    return 0


@click.command("send-test")
@click.argument("source", type=click.Choice(sorted(ENDPOINTS)))
@click.option("--url", required=True, help="Remediator's base URL, e.g. https://remediator.x.")
@click.option("--key", envvar="REMEDIATOR_API_KEY", default=None,
              help="Receiver API key (x-api-key); default $REMEDIATOR_API_KEY.")
@click.option("--basic", envvar="REMEDIATOR_BASIC", default=None,
              help="user:password for basic auth; default $REMEDIATOR_BASIC.")
@click.option("--sample", default=None,
              help="Which sample: adf log|metric|seed, synapse metric, functions log, "
                   "databricks job|task|seed (default the first).")
@click.option("--admin-key", envvar="REMEDIATOR_ADMIN_KEY", default=None,
              help="Admin key to read the event back; default $REMEDIATOR_ADMIN_KEY.")
@click.option("--ca-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Trust this CA (a private certificate).")
@click.pass_context
def send_test(ctx: click.Context, source: str, url: str, key: str | None, basic: str | None,
              sample: str | None, admin_key: str | None, ca_file: str | None) -> None:
    """Post a real-shaped SOURCE failure to a running Remediator and show what it became."""
    ctx.exit(run_send_test(source, url, sample=sample, key=key, basic=basic,
                           admin_key=admin_key, ca_file=ca_file))
