"""``remediator demo [--once] [--json] [--db PATH] [--port P]``: the whole product on one
machine, against the cloud emulators, in well under a minute.

It starts the sandbox (``python -m sandbox``, a child process), a webhook sink for the chat
channel and the ticket system, and the real service (``create_app`` under uvicorn on
127.0.0.1, live mode, the shipped playbooks, an LLM at the sandbox's OpenAI emulator). Each
step delivers real-shaped webhooks over HTTP and drives the engine by hand (the worker, then
the scheduler on a clock that jumps: a 15-minute delay takes no time), then reads what really
happened from the database, the sandbox's call log and the sink. Without ``--once`` the
service keeps running (worker and scheduler started, the dashboard at ``/``) until Ctrl-C.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

from cli.sandbox import remediator_toml, sandbox_process, stop_on_signals

if TYPE_CHECKING:
    from engine.config import HttpSettings

__all__ = ["demo", "run_demo", "shipped_playbooks"]


def shipped_playbooks() -> Path:
    """The ``playbooks/`` folder next to the package (a source checkout or an editable
    install), else ``./playbooks``."""
    here = Path(__file__).resolve().parents[1] / "playbooks"
    return here if here.is_dir() else Path.cwd() / "playbooks"


def _quote(value: str) -> str:
    return json.dumps(value)


def settings_text(urls: dict[str, str], *, db: str, playbooks: Path, sink_url: str,
                  receiver_key: str, admin_key: str) -> str:
    """The demo's settings file: live, the shipped playbooks, the clouds at the sandbox,
    the channel ``data-oncall`` and the ticket system at the sink, the LLM at the sandbox."""
    head = [
        "# Written by `remediator demo`: every cloud is a loopback emulator.",
        f"db = {_quote(db)}",
        f"playbooks = {_quote(str(playbooks))}",
        "live = true",
        f"api_keys = [{_quote(receiver_key)}]",
        f"admin_keys = [{_quote(admin_key)}]",
    ]
    return "\n".join(head) + "\n" + remediator_toml(
        urls, channel_url=f"{sink_url}/chat", ticket_url=f"{sink_url}/tickets", llm=True)


@contextmanager
def _serve(app: Any, http: HttpSettings, port: int) -> Iterator[str]:
    """The HTTP server of ``serve`` in a thread on 127.0.0.1; yields the base URL; stops it
    at the end."""
    from receivers.server import build_server

    server = build_server(app, http, host="127.0.0.1", port=port, lifespan="on")
    thread = threading.Thread(target=server.run, name="demo-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive():
                raise click.ClickException(f"the HTTP service did not start on port {port}")
            if time.monotonic() > deadline:
                raise click.ClickException("the HTTP service did not start in 60 s")
            time.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def run_demo(*, once: bool, as_json: bool, db_path: str | None, port: int) -> int:
    """Run the scenario (and serve, without ``once``); 0 if every step passed, else 1."""
    from rich.console import Console

    console = Console(stderr=as_json, highlight=False, quiet=as_json)
    with ExitStack() as stack:
        stop_on_signals(stack)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="remediator-demo-")))
        try:
            steps = _run(stack, workdir, console, once=once, db_path=db_path, port=port)
        except click.ClickException as exc:
            if as_json:
                click.echo(json.dumps({"ok": False, "steps": []}))
            click.echo(f"remediator demo: {exc.message}", err=True)
            return 1
    ok = bool(steps) and all(s.ok for s in steps)
    if as_json:
        click.echo(json.dumps({"ok": ok, "steps": msgspec.to_builtins(steps)}))
    return 0 if ok else 1


def _run(stack: ExitStack, workdir: Path, console: Any, *, once: bool, db_path: str | None,
         port: int) -> list[Any]:
    import httpx

    from cli._scenario import Harness, resume_after, run_steps
    from cli.drive import Sink
    from engine.clock import WarpClock
    from engine.config import load_settings
    from engine.errors import ConfigError, PlaybookError, StorageError
    from engine.logs import configure_logging
    from engine.runtime.service import Service
    from engine.store.db import Database

    console.print("[bold]Remediator demo[/bold]: starting the cloud emulators ...")
    urls = stack.enter_context(sandbox_process(workdir))
    sink = Sink()
    stack.callback(sink.close)
    receiver_key = "rk-" + secrets.token_urlsafe(18)
    admin_key = "ak-" + secrets.token_urlsafe(18)
    db_file = db_path or str(workdir / "remediator.db")
    config = workdir / "remediator.toml"
    config.write_text(settings_text(urls, db=db_file, playbooks=shipped_playbooks(),
                                    sink_url=sink.url, receiver_key=receiver_key,
                                    admin_key=admin_key))
    log_file = stack.enter_context((workdir / "remediator.log").open("w"))
    try:
        settings = load_settings(config, env={})
        configure_logging("info", "json", stream=log_file)
        db = Database(settings.db, sync_full=settings.sync_full)
    except (ConfigError, StorageError) as exc:
        raise click.ClickException(str(exc)) from exc
    stack.callback(db.close)
    clock = WarpClock()
    resume_after(db, clock)
    try:
        service = Service(settings, db, clock=clock)
    except PlaybookError as exc:
        raise click.ClickException("; ".join(exc.problems)) from exc
    stack.callback(service.stop)
    from receivers.app import create_app

    app = create_app(settings, db, service=service, start_service=False)
    base = stack.enter_context(_serve(app, settings.http, port))
    console.print(f"service on {base} (live, {len(service.playbooks.current.rules)} rules of "
                  f"{settings.playbooks}); emulators up; driving the engine by hand\n")
    harness = Harness(http=httpx.Client(base_url=base, timeout=30.0), receiver_key=receiver_key,
                      service=service, clock=clock, db=db, sandbox=urls, sink=sink)
    stack.callback(harness.close)
    steps = []
    for step in run_steps(harness):
        steps.append(step)
        mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
        console.print(f"{mark} [bold]{step.name}[/bold]: {step.expected}")
        console.print(f"    [dim]{step.actual}[/dim]", soft_wrap=False)
    passed = sum(s.ok for s in steps)
    colour = "green" if passed == len(steps) else "red"
    console.print(f"\n[{colour}]{passed} of {len(steps)} steps passed[/{colour}]")
    if not once:
        service.start()
        console.print(f"\nserving on {base} until Ctrl-C: dashboard {base}/ "
                      f"(admin key {admin_key}), receiver key {receiver_key}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")
    return steps


@click.command("demo")
@click.option("--once", is_flag=True, default=False,
              help="Run the scenario and exit (default: keep serving until Ctrl-C).")
@click.option("--json", "as_json", is_flag=True, default=False,
              help='Print only {"ok": ..., "steps": [...]} on stdout.')
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="SQLite file to use (default: a temporary one).")
@click.option("--port", type=int, default=0, show_default=True,
              help="Port for the HTTP service on 127.0.0.1 (0: any free port).")
@click.pass_context
def demo(ctx: click.Context, once: bool, as_json: bool, db_path: str | None, port: int) -> None:
    """Run Remediator against the cloud emulators: real webhooks, real remediations."""
    ctx.exit(run_demo(once=once, as_json=as_json, db_path=db_path, port=port))
