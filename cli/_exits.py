"""How a command fails: its message on stderr, and the exit code of that kind of failure.

Commands return their exit code and only ``main`` exits: 0 done, 1 refused (the server, the
guards, the cloud, the database or the input said no), 2 the command cannot run as given
(a bad option or setting).
"""

from __future__ import annotations

import click

from engine.errors import ConfigError

__all__ = ["Refused", "Usage", "fail"]


class Refused(Exception):
    """The server or the guards said no; the message says why (exit 1)."""


class Usage(Exception):
    """The command cannot run as given (exit 2)."""


def fail(prefix: str, exc: Exception) -> int:
    """Print ``prefix: exc`` on stderr; returns 2 for a usage or settings error (:class:`Usage`,
    ``ConfigError``), else 1."""
    click.echo(f"{prefix}: {exc}", err=True)
    return 2 if isinstance(exc, Usage | ConfigError) else 1
