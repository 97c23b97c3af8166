"""The ``remediator`` command: thin wrappers that call into the engine and return exit codes.

Commands return an exit code; only :func:`main` exits.
"""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="remediator")
def main() -> None:
    """Remediator: rules-driven auto-remediation for Azure data platforms."""


from engine.cli.serve import serve  # noqa: E402

main.add_command(serve)

from engine.cli.playbooks import schema, simulate, test, validate  # noqa: E402

main.add_command(validate)
main.add_command(test)
main.add_command(simulate)
main.add_command(schema)

from engine.cli.setup import setup  # noqa: E402

main.add_command(setup)

from engine.cli.send_test import send_test  # noqa: E402

main.add_command(send_test)

from engine.cli.audit import audit  # noqa: E402
from engine.cli.replay import replay  # noqa: E402

main.add_command(audit)
main.add_command(replay)

from engine.cli.rca import rca  # noqa: E402

main.add_command(rca)

from engine.cli.sandbox import sandbox  # noqa: E402

main.add_command(sandbox)

from engine.cli.demo import demo  # noqa: E402

main.add_command(demo)

from engine.cli.admin import approve, incidents, pause, reject, resume  # noqa: E402

main.add_command(approve)
main.add_command(reject)
main.add_command(pause)
main.add_command(resume)
main.add_command(incidents)
