"""``remediator serve``: load the settings, open the database, run the HTTP service and the
engine (worker, scheduler); SIGHUP reloads the playbooks."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click
import structlog

from cli._db import db_option
from cli._exits import fail
from engine.config import load_settings
from engine.errors import ConfigError, PlaybookError, StorageError
from engine.logs import configure_logging

__all__ = ["install_reload_signal", "log_playbook_warnings", "run_serve", "serve",
           "tell_findings"]

log = structlog.get_logger("remediator.serve")


def log_playbook_warnings(service: Any, settings_name: str) -> list[Any]:
    """What ``remediator validate --config`` would warn about the set in force, in the log:
    a channel, ticket system, LLM or cloud credential the settings lack, a misspelled
    attribute or code (engine/rules/lint.py). Returns the findings."""
    from engine.rules.lint import lint

    findings = lint(service.playbooks.current, service.settings, settings_name)
    for finding in findings:
        (log.warning if finding.level == "warning" else log.info)(
            "playbook_" + finding.level, problem=str(finding))
    return findings


NO_NOTIFICATIONS = ("remediator serve: note: no [notifications] channels: an incident that "
                    "escalates or waits for approval is announced nowhere but the dashboard and "
                    "/api (docs/DEPLOY.md, \"Every section of the settings\")")
"""Said at start: without it, an escalation reaches only someone who looks."""


def tell_findings(findings: list[Any], config: str | None, playbooks: str) -> None:
    """The same findings on stderr in sentences, for the person who starts the service at a
    terminal (or with ``log_format = "console"``): an action the settings cannot perform is
    an escalation that would reach nobody."""
    warnings = sum(f.level == "warning" for f in findings)
    if not findings:
        return
    check = f"remediator validate --config {config}" if config else "remediator validate"
    click.echo(f"remediator serve: {warnings} warning(s) about the playbooks and the settings "
               f"(`{check} {playbooks}` says the same):", err=True)
    for finding in findings:
        click.echo(f"  {finding}", err=True)


def install_reload_signal(service: Any, settings_name: str = "the settings") -> None:
    """SIGHUP reloads the playbooks, in a thread of its own (never inside the handler): an
    invalid set is logged and refused, the set in force stays; a new set's warnings are
    logged."""

    def reload_in_thread() -> None:
        problems = service.reload(who="SIGHUP")
        for problem in problems:
            log.warning("playbooks_problem", problem=problem)
        if not problems:
            log_playbook_warnings(service, settings_name)

    def on_hup(signum: int, frame: Any) -> None:
        del signum, frame
        threading.Thread(target=reload_in_thread, name="remediator-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)


def run_serve(
    config: str | None,
    *,
    host: str | None = None,
    port: int | None = None,
    db: str | None = None,
    playbooks: str | None = None,
    live: bool = False,
) -> int:
    """Serve until stopped (SIGINT/SIGTERM). Returns the exit code: 0, or 2 for a bad setting
    (its message on stderr), 1 if the database cannot be opened."""
    # Imported here: only this command needs the web stack.
    from engine.runtime.service import Service
    from engine.store import replicas
    from engine.store.db import Database, is_server_url
    from engine.store.serve_lock import ServeLock
    from receivers.app import create_app
    from receivers.databricks import parse_cluster_events_page
    from receivers.server import build_server

    try:
        settings = load_settings(
            config, host=host, port=port, db=db, playbooks=playbooks, live=True if live else None
        )
        try:
            configure_logging(settings.log_level, settings.log_format)
        except ValueError as exc:
            raise ConfigError(f"log_level: {exc}") from exc
        serve_lock = None
        if not is_server_url(settings.db) and settings.db != ":memory:":
            serve_lock = ServeLock(settings.db)
            serve_lock.acquire()
        try:
            database = Database(settings.db, sync_full=settings.sync_full)
            if serve_lock is not None:  # the only serve of this file: whoever beat is dead
                replicas.resign_all(database)
        except StorageError:
            if serve_lock is not None:
                serve_lock.release()
            raise
    except (ConfigError, StorageError) as exc:
        return fail("remediator serve", exc)
    try:
        try:
            service = Service(settings, database, parse_cluster_page=parse_cluster_events_page)
            app = create_app(settings, database, service=service)
        except PlaybookError as exc:
            for problem in exc.problems:
                click.echo(f"remediator serve: {problem}", err=True)
            return 2
        except ConfigError as exc:
            return fail("remediator serve", exc)
        for warning in app.state["authenticator"].key_scope_warnings():
            log.warning("auth", problem=warning)
        findings = log_playbook_warnings(service, config or "the settings")
        if sys.stderr.isatty() or settings.log_format == "console":
            # A person reads stderr: say it in sentences. A JSON log stream stays JSON (each
            # finding is in it as a `playbook_warning` record).
            tell_findings(findings, config, settings.playbooks)
            if not settings.notifications.channels:
                click.echo(NO_NOTIFICATIONS, err=True)
        elif not settings.notifications.channels:
            log.info("no_notifications", problem=NO_NOTIFICATIONS.split(": ", 2)[2])
        install_reload_signal(service, config or "the settings")
        build_server(app, settings.http, host=settings.host, port=settings.port).run()
    finally:
        database.close()
        if serve_lock is not None:
            serve_lock.release()
    return 0


@click.command()
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="TOML settings file (REMEDIATOR_* environment variables override it).")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@db_option(default=None, exists=False, dest="db",
           help="The database (default remediator.db).")
@click.option("--playbooks", default=None, help="Playbooks folder (default playbooks).")
@click.option("--live", is_flag=True, default=False,
              help="Make real cloud calls (the default is dry-run).")
@click.pass_context
def serve(ctx: click.Context, config: str | None, host: str | None, port: int | None,
          db: str | None, playbooks: str | None, live: bool) -> None:
    """Run the HTTP service and the engine: receivers, /api, dashboard, worker, scheduler."""
    ctx.exit(run_serve(config, host=host, port=port, db=db, playbooks=playbooks, live=live))
