"""The ``remediator`` command: thin wrappers that call into the engine and return exit codes.

Commands return an exit code; only :func:`main` exits. Every command is listed here, by hand.
"""

from __future__ import annotations

import click

from cli.admin import approve, breakers, events, incidents, pause, reject, reset_breaker, resume
from cli.audit import audit
from cli.demo import demo
from cli.drill import drill
from cli.migrate import migrate
from cli.operate import ack, assign, hash_password_command, note, rerun, resolve
from cli.playbooks import schema, simulate, test, validate
from cli.rca import rca
from cli.replay import replay
from cli.sandbox import sandbox
from cli.send_test import send_test
from cli.serve import serve
from cli.setup import setup
from cli.silence import silence

__all__ = ["main"]

COMMANDS: tuple[click.Command, ...] = (
    serve,
    demo,
    sandbox,
    validate,
    test,
    simulate,
    schema,
    rca,
    replay,
    audit,
    approve,
    reject,
    pause,
    resume,
    incidents,
    breakers,
    reset_breaker,
    events,
    silence,
    setup,
    send_test,
    drill,
    ack,
    assign,
    note,
    resolve,
    rerun,
    hash_password_command,
    migrate,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="remediator")
def main() -> None:
    """Remediator: rules-driven auto-remediation for Azure data platforms."""


for _command in COMMANDS:
    main.add_command(_command)
