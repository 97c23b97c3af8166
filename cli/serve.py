"""``remediator serve``: load the settings, open the database, run the HTTP service and the
engine (worker, scheduler); SIGHUP reloads the playbooks."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
import structlog

from cli._db import db_option
from cli._exits import fail
from engine.config import load_settings
from engine.errors import ConfigError, PlaybookError, StorageError
from engine.logs import configure_logging

__all__ = ["install_reload_signal", "log_playbook_warnings", "run_serve", "serve"]

log = structlog.get_logger("remediator.serve")


def log_playbook_warnings(service: Any, settings_name: str) -> None:
    """What ``remediator validate --config`` would warn about the set in force, in the log:
    a channel the settings lack, a misspelled attribute or code (engine/rules/lint.py)."""
    from engine.rules.lint import lint

    for finding in lint(service.playbooks.current, service.settings, settings_name):
        (log.warning if finding.level == "warning" else log.info)(
            "playbook_" + finding.level, problem=str(finding))


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
        log_playbook_warnings(service, config or "the settings")
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
