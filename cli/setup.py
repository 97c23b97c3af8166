"""``remediator setup azure | databricks``: point the real senders at a running Remediator.

``setup azure`` writes Bicep and ARM JSON (action groups with a webhook receiver, metric and log
search alert rules) and prints the ``az`` commands that deploy them; it calls no Azure API.
``setup databricks`` creates or reuses a notification destination and adds it to jobs'
webhook notifications through the Databricks SDK; without ``--apply`` it prints the plan and
changes nothing. Commands return exit codes: 0 done, 1 the cloud refused, 2 bad input.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from cli import setup_azure
from cli._exits import fail
from engine.cloud import destinations
from engine.cloud.clients import Clients, DatabricksRoute
from engine.config import PollerSettings, Secret, load_settings
from engine.errors import ActionError, ConfigError

__all__ = ["parse_jobs", "run_setup_azure", "run_setup_databricks", "setup"]


_JSON = click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/CLI.md).")


@click.group()
def setup() -> None:
    """Connect the senders (Azure Monitor, Databricks) to a running Remediator."""


def run_setup_azure(targets: setup_azure.AzureTargets, out: Path,
                    templates: Path | None = None, *, as_json: bool = False) -> int:
    """Render the templates into ``out`` and print the deployment commands; 0, or 2 (bad
    input, its message on stderr). ``as_json``: one object (docs/CLI.md)."""
    try:
        alerts = setup_azure.build(targets)
        files = setup_azure.render(alerts, templates)
    except ConfigError as exc:
        click.echo(f"remediator {exc}", err=True)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    commands = setup_azure.apply_commands(alerts, out)
    if as_json:
        click.echo(json.dumps({
            "files": [str(out / name) for name in files],
            "action_groups": len(alerts.action_groups),
            "metric_alerts": len(alerts.metric_alerts),
            "log_alerts": len(alerts.log_alerts), "notes": list(alerts.notes),
            "commands": list(commands)}, indent=2))
        return 0
    for name in files:
        click.echo(f"wrote {out / name}")
    click.echo(f"{len(alerts.action_groups)} action group(s), {len(alerts.metric_alerts)} "
               f"metric alert(s), {len(alerts.log_alerts)} log search alert(s)")
    for note in alerts.notes:
        click.echo(f"note: {note}")
    click.echo("\nto deploy:")
    for line in commands:
        click.echo(f"  {line}")
    return 0


@setup.command("azure")
@click.option("--subscription", required=True, help="Subscription id of the resources.")
@click.option("--resource-group", required=True,
              help="Resource group of the resources and of the alert rules.")
@click.option("--factory", "factories", multiple=True, help="Data Factory name (repeatable).")
@click.option("--synapse", "synapse", multiple=True, help="Synapse workspace name (repeatable).")
@click.option("--function-app", "function_apps", multiple=True,
              help="Function app name (repeatable); its exceptions come from App Insights.")
@click.option("--app-insights", default="",
              help="Application Insights component of the function apps (default: each app's "
                   "own name).")
@click.option("--log-workspace", default="",
              help="ARM id of the Log Analytics workspace that holds the run logs (default: "
                   "the log alerts are scoped to each resource).")
@click.option("--url", required=True, help="Remediator's public base URL (https).")
@click.option("--auth", type=click.Choice(["key", "basic", "entra"]), default="key",
              show_default=True, help="How Azure Monitor authenticates to Remediator.")
@click.option("--basic-user", default="azure-monitor", show_default=True,
              help="User name for --auth basic (one of the service's basic_users).")
@click.option("--entra-object-id", default="", help="--auth entra: the receiver app's object id.")
@click.option("--entra-identifier-uri", default="",
              help="--auth entra: the receiver app's identifier URI (api://...).")
@click.option("--tenant-id", default="", help="--auth entra: the tenant of the receiver app.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("remediator-azure"), show_default=True,
              help="Folder for the rendered files.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help="Folder of the templates (default: deploy/azure of the "
                                 "source checkout, else ./deploy/azure).")
@_JSON
@click.pass_context
def setup_azure_command(ctx: click.Context, out: Path, templates: Path | None, as_json: bool,
                        **options: object) -> None:
    """Write Bicep and ARM JSON for action groups and alert rules; print how to deploy them."""
    ctx.exit(run_setup_azure(setup_azure.targets_from(options), out, templates,
                             as_json=as_json))


def parse_jobs(value: str) -> list[int] | None:
    """``all`` -> None (every job), else the comma-separated job ids; ConfigError if not ints."""
    if value.strip().lower() == "all":
        return None
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"--jobs: expected 'all' or job ids like 123,456, got {value!r}") from exc
    if not ids:
        raise ConfigError("--jobs: no job id given")
    return ids


def _basic_user(users: dict[str, Secret], wanted: str) -> tuple[str, Secret]:
    if wanted:
        if wanted not in users:
            raise ConfigError(f"--user {wanted!r} is not one of the settings' basic_users")
        return wanted, users[wanted]
    if not users:
        raise ConfigError("the settings have no basic_users; a Databricks webhook "
                          "destination can carry only basic auth (user and password)")
    name = sorted(users)[0]
    return name, users[name]


def _plan_json(plan: destinations.SetupPlan) -> dict[str, Any]:
    dest = plan.destination
    return {"destination": {"display_name": dest.display_name, "url": dest.url,
                            "username": dest.username, "id": dest.id, "exists": dest.exists},
            "jobs": [{"job_id": job.job_id, "name": job.name, "events": list(job.events),
                      "missing": list(job.missing), "changed": job.changed}
                     for job in plan.jobs]}


def _print_plan(plan: destinations.SetupPlan, apply: bool) -> None:
    dest = plan.destination
    verb = "" if apply else "would "
    if dest.exists:
        click.echo(f"destination: {verb}reuse {dest.display_name!r} (id {dest.id}) and refresh "
                   f"its URL {dest.url} and user {dest.username!r}")
    else:
        click.echo(f"destination: {verb}create {dest.display_name!r} -> {dest.url} "
                   f"(basic auth, user {dest.username!r})")
    for job in plan.jobs:
        if job.changed:
            click.echo(f"job {job.job_id} ({job.name}): {verb}add the destination to "
                       f"webhook_notifications.{', '.join(job.missing)}")
        else:
            click.echo(f"job {job.job_id} ({job.name}): already connected "
                       f"({', '.join(job.events)})")
    if not plan.jobs:
        click.echo("no job chosen")


def run_setup_databricks(
    config: str | None,
    workspace: str,
    url: str,
    *,
    jobs: str = "all",
    on_success: bool = False,
    apply: bool = False,
    user: str = "",
    as_json: bool = False,
) -> int:
    """Plan (and with ``apply``, make) the destination and job changes; list the clusters.

    Returns 0, 1 when Databricks refuses (or a job is already at three destinations), 2 for
    bad input. ``as_json``: one object (docs/CLI.md).
    """
    try:
        settings = load_settings(config)
        entry = settings.clouds.databricks.get(workspace)
        if entry is None:
            known = ", ".join(sorted(settings.clouds.databricks)) or "none"
            raise ConfigError(f"--workspace {workspace!r}: no [clouds.databricks.{workspace}] "
                              f"in the settings (configured: {known})")
        job_ids = parse_jobs(jobs)
        username, password = _basic_user(settings.basic_users, user)
        target = url.rstrip("/") + "/databricks-monitor"
        clients = Clients(settings.clouds)
    except ConfigError as exc:
        return fail("remediator setup databricks", exc)
    try:
        w = clients.databricks(DatabricksRoute(workspace, entry))
        plan = destinations.plan(w, target, username, jobs=job_ids, on_success=on_success)
        if not as_json:
            _print_plan(plan, apply)
        dest_id = destinations.apply(w, plan, password) if apply else None
        if not as_json:
            changed = sum(1 for job in plan.jobs if job.changed)
            click.echo(f"done: destination {dest_id}, {changed} job(s) updated" if apply else
                       "dry run: nothing changed (add --apply to make these changes)")
        clusters = destinations.list_clusters(w)
    except (ConfigError, ActionError) as exc:
        return fail("remediator setup databricks", exc)
    finally:
        clients.close()
    heading, shown = _clusters(settings.pollers, workspace, clusters)
    if as_json:
        click.echo(json.dumps({**_plan_json(plan), "applied": apply, "destination_id": dest_id,
                               "poller": heading, "clusters": [
                                   dataclasses.asdict(c) for c in shown]}, indent=2))
        return 0
    click.echo(heading)
    for cluster in shown:
        click.echo("  " + "  ".join(x for x in (cluster.cluster_id, cluster.name, cluster.state,
                                                  cluster.source) if x))
    return 0


def _clusters(pollers: PollerSettings, workspace: str,
              clusters: list[destinations.ClusterView],
              ) -> tuple[str, list[destinations.ClusterView]]:
    """The clusters the cluster-events poller will read, as ``[pollers]`` configures it, under
    a line that says so."""
    cfg = pollers.databricks.get(workspace)
    chosen = cfg.clusters if cfg is not None else ()
    if not pollers.enabled or not chosen:
        why = "[pollers] enabled = false" if not pollers.enabled else (
            f"[pollers.databricks.{workspace}] clusters is not set")
        return (f"the cluster-events poller watches no cluster of this workspace ({why}); "
                f"the workspace's clusters ({len(clusters)}):", clusters)
    if chosen == "all":
        return f"clusters the cluster-events poller will watch (all, {len(clusters)}):", clusters
    known = {c.cluster_id: c for c in clusters}
    shown = [known.get(i, destinations.ClusterView(i, "(not in clusters/list)", "", ""))
             for i in chosen]
    return f"clusters the cluster-events poller will watch ({len(shown)}):", shown


@setup.command("databricks")
@click.option("--workspace", required=True,
              help="Name of the [clouds.databricks.NAME] entry in the settings.")
@click.option("--url", required=True, help="Remediator's public base URL (https, public CA).")
@click.option("--jobs", default="all", show_default=True, help="'all' or job ids: 123,456.")
@click.option("--on-success", is_flag=True, default=False,
              help="Also notify on success (resolves open incidents).")
@click.option("--apply", "apply", is_flag=True, default=False,
              help="Make the changes (the default prints the plan only).")
@click.option("--user", default="", help="Which basic_users entry the destination logs in as.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="TOML settings file.")
@_JSON
@click.pass_context
def setup_databricks_command(ctx: click.Context, workspace: str, url: str, jobs: str,
                             on_success: bool, apply: bool, user: str,
                             config: str | None, as_json: bool) -> None:
    """Create or reuse a webhook destination and add it to the jobs' failure notifications."""
    ctx.exit(run_setup_databricks(config, workspace, url, jobs=jobs, on_success=on_success,
                                  apply=apply, user=user, as_json=as_json))
