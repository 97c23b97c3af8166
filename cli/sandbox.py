"""``remediator sandbox [--config-out FILE]``: the emulators in a child process, a webhook
sink for the chat channel and the ticket system, and a Remediator settings file whose
``[clouds]``, channel, ticket system and ``[llm]`` point at them.

The engine never imports ``sandbox`` (import-linter contract): it runs ``python -m sandbox``
as a subprocess and reads the ``[sandbox]`` table it writes.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

__all__ = [
    "SandboxUrls",
    "remediator_toml",
    "run_sandbox",
    "sandbox",
    "sandbox_process",
    "stop_on_signals",
]

SandboxUrls = dict[str, str]
"""The ``[sandbox]`` table: databricks_url, adf_url, synapse_url, openai_url, ca_file."""

# The ids the shipped samples name, so that their events route to the sandbox.
SUBSCRIPTION = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
RESOURCE_GROUP = "rg-dataplatform-prod"
WORKSPACE_ID = "1234567890123456"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def remediator_toml(urls: SandboxUrls, *, channel_url: str = "", ticket_url: str = "",
                    llm: bool = False, notify: bool = False) -> str:
    """Settings text whose [clouds] use the sandbox: ADF (any factory of the samples'
    subscription), Synapse, one Databricks workspace; optional notify/ticket webhooks; with
    ``llm``, the ``[llm]`` of root-cause analysis at the OpenAI emulator; with ``notify``,
    ``[notifications]`` of every state change to the channel."""
    lines = [
        "# Written by `remediator sandbox`: the clouds are the loopback emulators.",
        "[clouds.adf.sandbox]",
        f"subscription_id = {_quote(SUBSCRIPTION)}",
        f"resource_group = {_quote(RESOURCE_GROUP)}",
        'factories = ["*"]',
        f"base_url = {_quote(urls['adf_url'])}",
        f"ca_file = {_quote(urls['ca_file'])}",
        "retries = 0",
        "[clouds.adf.sandbox.credential]",
        'type = "client_secret"',
        'tenant_id = "72f988bf-0000-4a1b-9c3d-2e4f6a8b0c1d"',
        'client_id = "remediator"',
        'client_secret = "sandbox-secret"',
        f"authority = {_quote(urls['adf_url'])}",
        "disable_instance_discovery = true",
        "[clouds.synapse.sandbox]",
        'workspace = "syn-contoso-prod"',
        f"endpoint = {_quote(urls['synapse_url'])}",
        f"ca_file = {_quote(urls['ca_file'])}",
        "retries = 0",
        "[clouds.synapse.sandbox.credential]",
        'type = "static"',
        'token = "sandbox-token"',
        "[clouds.databricks.sandbox]",
        f"host = {_quote(urls['databricks_url'])}",
        f"workspace_id = {_quote(WORKSPACE_ID)}",
        'token = "dapi-sandbox-token"',
        "retry_timeout = 5.0",
    ]
    if channel_url:
        lines += ["[clouds.channels.data-oncall]", f"url = {_quote(channel_url)}"]
    if ticket_url:
        lines += ["[clouds.ticket]", f"url = {_quote(ticket_url)}"]
    if notify and channel_url:
        lines += ["[notifications]", 'channels = ["data-oncall"]']
    if llm:
        lines += ["[llm]", 'provider = "openai"', f"base_url = {_quote(urls['openai_url'])}",
                  'api_key = "sk-sandbox"', "timeout = 10.0", "max_retries = 0"]
    return "\n".join(lines) + "\n"


def stop_on_signals(stack: ExitStack) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C (KeyboardInterrupt) until ``stack`` closes, so
    that a child process and a server are stopped on the way out (the default actions end the
    process at once and leave the child running)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: object) -> None:
        del signum, frame
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        stack.callback(signal.signal, signum, signal.signal(signum, stop))


def _die_with_parent() -> None:
    """Run in the child before exec: the kernel sends it SIGTERM when its parent dies, even by
    kill -9, which no handler of the parent's can catch (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _log_tail(log: Path, lines: int = 20) -> str:
    """Where a failed child's log is kept (outside the temporary folder that is about to be
    removed) and its last lines."""
    fd, kept = tempfile.mkstemp(prefix="remediator-sandbox-", suffix=".log")
    with os.fdopen(fd, "wb") as copy:
        copy.write(log.read_bytes())
    tail = log.read_text(errors="replace").splitlines()[-lines:]
    return f"its log is kept at {kept}; the last lines:\n" + "\n".join(
        f"  | {line}" for line in tail)


@contextmanager
def sandbox_process(workdir: Path, *, timeout_s: float = 60.0) -> Iterator[SandboxUrls]:
    """Start ``python -m sandbox --config-out`` in ``workdir``; yield its URLs once it has
    written them; terminate it at the end.

    Raises click.ClickException if it fails to start, with the end of its log (the whole log is
    kept in a file the message names). If it dies while in use, the same is printed on stderr.
    """
    out = workdir / "sandbox.toml"
    out.unlink(missing_ok=True)
    log_path = workdir / "sandbox.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--config-out", str(out), "--workdir", str(workdir)],
            stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        deadline = time.monotonic() + timeout_s
        while not (out.exists() and out.read_text().strip().endswith('"')):
            if process.poll() is not None:
                raise click.ClickException(
                    f"the sandbox exited with {process.returncode}; {_log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"the sandbox did not start in {timeout_s:.0f} s; {_log_tail(log_path)}")
            time.sleep(0.1)
        yield dict(tomllib.loads(out.read_text())["sandbox"])
        if process.poll() is not None:
            click.echo(f"the sandbox exited with {process.returncode} while in use; "
                       f"{_log_tail(log_path)}", err=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _show_post(path: str, body: Any) -> None:
    """A post to the sandbox's chat channel or ticket system, as its receiver would see it."""
    where = {"/chat": "channel data-oncall", "/tickets": "ticket system"}.get(path, path)
    text = body.get("text") or body.get("title") if isinstance(body, dict) else None
    click.echo(f"{where} <- {text or json.dumps(body)[:300]}", err=True)


def run_sandbox(config_out: str | None) -> int:
    """Serve the emulators until Ctrl-C or SIGTERM, and a webhook sink that stands in for the
    chat channel and the ticket system (what is posted to it is printed); write the settings
    to ``config_out`` (and print them): the clouds, the channel ``data-oncall`` and the ticket
    system at the sink, the LLM at the OpenAI emulator, so that no action the shipped
    playbooks use is one the settings cannot perform."""
    from cli.drive import Sink

    with ExitStack() as stack:
        stop_on_signals(stack)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="remediator-sandbox-"))
        sink = Sink(on_post=_show_post)
        stack.callback(sink.close)
        try:
            with sandbox_process(Path(tmp)) as urls:
                text = remediator_toml(urls, channel_url=f"{sink.url}/chat",
                                       ticket_url=f"{sink.url}/tickets", llm=True,
                                       notify=True)
                if config_out:
                    Path(config_out).write_text(text)
                    click.echo(f"settings for the sandbox written to {config_out}")
                click.echo(text, nl=False)
                click.echo("serving the emulators; Ctrl-C stops them", err=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:  # also one that comes while starting or writing the settings
            pass
        except click.ClickException as exc:
            click.echo(f"remediator sandbox: {exc.message}", err=True)
            return 1
    return 0


@click.command("sandbox")
@click.option("--config-out", type=click.Path(dir_okay=False), default=None,
              help="Write a Remediator settings file whose [clouds] use the emulators.")
@click.pass_context
def sandbox(ctx: click.Context, config_out: str | None) -> None:
    """Run the cloud emulators (Databricks, ADF, Synapse, OpenAI) on loopback ports."""
    ctx.exit(run_sandbox(config_out))
