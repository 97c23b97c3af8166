"""The ``--db`` option every command that opens the database shares: a SQLite file or a
``postgresql://`` URL, from the option or ``REMEDIATOR_DB``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from engine.store.db import is_server_url

__all__ = ["DB_ENV", "DatabaseTarget", "db_option", "shown"]

DB_ENV = "REMEDIATOR_DB"


class DatabaseTarget(click.ParamType):
    """A ``postgresql://`` URL as given, or a SQLite file (which must exist if ``exists``)."""

    name = "file-or-url"

    def __init__(self, *, exists: bool) -> None:
        self.exists = exists

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        text = str(value)
        if is_server_url(text):
            return text
        return click.Path(dir_okay=False, exists=self.exists).convert(text, param, ctx)


def db_option(*, default: str | None, exists: bool, help: str, dest: str = "db_path") -> Any:
    """``--db`` (``REMEDIATOR_DB``): a SQLite file or a PostgreSQL URL."""
    return click.option(
        "--db", dest, default=default, envvar=DB_ENV, show_default=default is not None,
        type=DatabaseTarget(exists=exists),
        help=f"{help} A SQLite file, or a postgresql:// URL (also ${DB_ENV}).")


def shown(target: str | Path) -> str:
    """``target`` fit for a message: a URL without its password."""
    if is_server_url(target):
        from engine.store.postgres import display_url

        return display_url(str(target))
    return str(target)
