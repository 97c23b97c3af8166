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

from cli import readback
from cli.client import (
    ADMIN_KEY_ENV,
    API_KEY_ENV,
    DEFAULT_URL,
    URL_ENV,
    Answer,
    BadAnswer,
    fetch,
    receiver_refused,
)
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

MAX_WAIT_S = 600.0
"""The longest ``--wait``: a CI job must end."""


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


def _show(response: Answer) -> str:
    try:
        return json.dumps(response.json(), indent=2, sort_keys=True)
    except BadAnswer:
        return redact_text(response.text[:2000])


def _print_decision(found: readback.Decision) -> None:
    event = found.event
    code = event.get("error_code") or "none"
    click.echo(f"event:    {event['state']}: {event.get('source')} {event.get('kind')} "
               f"{event.get('status')} {event.get('resource')}, error code {code}")
    if event["state"] == "parked":
        click.echo(f"parked:   {event.get('reason')}")
        return
    for line in readback.lines(found):
        click.echo(line)


def run_send_test(source: str, url: str, *, sample: str | None = None, key: str | None = None,
                  basic: str | None = None, admin_key: str | None = None,
                  ca_file: str | None = None, timeout: float = 10.0, wait: float = 30.0,
                  as_json: bool = False) -> int:
    """Post the sample, print the answer and, with an admin key, wait up to ``wait`` seconds
    for the engine and print what it decided (the event, the rule, the incident, its
    actions). 0 on 202 (and a decision, when one was awaited), else 1; 2 for bad input
    (unknown sample, malformed --basic, a wait out of bounds). ``as_json``: one object
    (docs/CLI.md)."""
    name = sample or SAMPLES[source][0]
    usage = None
    if name not in SAMPLES[source]:
        usage = f"{source} has no sample {name!r}; choose one of {', '.join(SAMPLES[source])}"
    elif not 0 <= wait <= MAX_WAIT_S:
        usage = f"--wait: expected 0 to {MAX_WAIT_S:g} seconds, got {wait:g}"
    headers: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    if key:
        headers["x-api-key"] = key
    if basic and usage is None:
        user, sep, password = basic.partition(":")
        if not sep or not user:
            usage = "--basic: expected user:password"
        auth = (user, password)
    if usage:
        click.echo(f"remediator send-test: {usage}", err=True)
        return 2
    base = url.rstrip("/")
    target = f"{base}/{ENDPOINTS[source]}"
    report: dict[str, Any] = {"ok": False, "url": target, "source": source, "sample": name,
                              "status": None, "answer": None, "event": None, "rule": None,
                              "incident": None, "actions": [], "error": None}

    def done(code: int, error: str | None = None) -> int:
        report["ok"], report["error"] = code == 0, error
        if as_json:
            click.echo(json.dumps(report, indent=2, sort_keys=True, default=str))
        if error:
            click.echo(f"remediator send-test: {error}", err=True)
        return code

    payload = fresh_payload(source, name)
    with httpx.Client(timeout=timeout, verify=ca_file or True, follow_redirects=False) as client:
        try:
            response = fetch(client, "POST", target, within=timeout, json=payload,
                             headers=headers, auth=auth)
        except httpx.HTTPError as exc:
            return done(1, f"cannot reach {target}: {redact_text(str(exc))}")
        report["status"] = response.status_code
        try:
            report["answer"] = response.json()
        except BadAnswer:
            report["answer"] = redact_text(response.text[:2000])
        if not as_json:
            click.echo(f"POST {target} ({source}/{name}) -> {response.status_code}")
            click.echo(_show(response))
        if response.status_code == 401:
            return done(1, receiver_refused(base))
        if response.status_code != 202:
            return done(1)
        answer = report["answer"]
        event_id = answer.get("event_id") if isinstance(answer, dict) else None
        if not isinstance(event_id, str | None) or len(event_id or "") > 200:
            return done(1, f"{target} answered 202 with an event_id that is not one: "
                           f"{str(event_id)[:100]!r}")
        if not event_id:
            return done(0)
        if not admin_key:
            return done(0) if as_json else _note(
                f"no admin key: what the engine decided is not read back (--admin-key or "
                f"${ADMIN_KEY_ENV})")
        try:
            if not wait or not readback.has_engine(client, base, admin_key):
                event = readback.get(client, base, admin_key, f"/events/{event_id}")
                report["event"] = {k: v for k, v in event.items() if k != "raw"}
                if not as_json:
                    click.echo(f"GET /api/events/{event_id} -> 200")
                    click.echo(json.dumps(report["event"], indent=2, sort_keys=True))
                    if wait:
                        click.echo("this server runs the receivers only: no engine decides "
                                   "here", err=True)
                return done(0)
            found = readback.decision(client, base, admin_key, str(event_id), wait)
        except readback.ReadbackError as exc:
            return done(1, str(exc))
    report.update(event=found.event, rule=found.rule, incident=found.incident,
                  actions=found.actions)
    if not as_json:
        _print_decision(found)
    if found.event["state"] == "parked":
        return done(1, f"the engine parked event {event_id}: {found.event.get('reason')}")
    return done(0)


def _note(text: str) -> int:
    click.echo(f"note: {text}", err=True)
    return 0


@click.command("send-test")
@click.argument("source", type=click.Choice(sorted(ENDPOINTS)))
@click.option("--url", envvar=URL_ENV, default=DEFAULT_URL, show_default=True,
              help=f"Remediator's base URL, e.g. https://remediator.x (default: ${URL_ENV}).")
@click.option("--key", envvar=API_KEY_ENV, default=None,
              help=f"Receiver API key (x-api-key); default ${API_KEY_ENV}.")
@click.option("--basic", envvar="REMEDIATOR_BASIC", default=None,
              help="user:password for basic auth; default $REMEDIATOR_BASIC.")
@click.option("--sample", default=None,
              help="Which sample: adf log|metric|seed, synapse metric, functions log, "
                   "databricks job|task|seed (default the first).")
@click.option("--admin-key", envvar=ADMIN_KEY_ENV, default=None,
              help=f"Admin key to read back what the engine decided; default ${ADMIN_KEY_ENV}.")
@click.option("--wait", type=float, default=30.0, show_default=True,
              help=f"Seconds to wait for the engine's decision (0: do not wait; at most "
                   f"{MAX_WAIT_S:g}).")
@click.option("--ca-file", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Trust this CA (a private certificate).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/CLI.md).")
@click.pass_context
def send_test(ctx: click.Context, source: str, url: str, key: str | None, basic: str | None,
              sample: str | None, admin_key: str | None, wait: float, ca_file: str | None,
              as_json: bool) -> None:
    """Post a real-shaped SOURCE failure to a running Remediator and show what it became."""
    ctx.exit(run_send_test(source, url, sample=sample, key=key, basic=basic,
                           admin_key=admin_key, ca_file=ca_file, wait=wait, as_json=as_json))
