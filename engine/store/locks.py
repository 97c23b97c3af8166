"""Transaction-level advisory locks per key: what keeps a check-then-act of several replicas
on PostgreSQL as safe as SQLite's one writer keeps it on one file.

Write transactions of different replicas run side by side (engine/store/postgres.py). Each
store write that reads before it writes makes itself safe in one of four ways:

- a unique index and ``INSERT ... ON CONFLICT``: open or join an incident (the partial unique
  index ``incidents_one_active``, migration 0008), the intake's dedup key, a target's lock,
  the RCA pending row;
- a compare-and-set (``UPDATE ... WHERE state = ?``, one statement): an incident's moves, an
  action's start and outcome, claims of probes, expiries and notifications, the LLM budget;
- a row lock (``SELECT ... FOR UPDATE``) held to the end of the transaction: an attempt settled
  (engine/lifecycle.py ``lock``);
- an advisory lock of this module, held to the end of the transaction, where what is checked
  is a count of rows that do not exist yet (a budget, a cooldown, the silences' cap) or an
  order (the inbox's claims: one claim at a time, so
  that a lane's events are claimed in the order they came, never a later one past an
  earlier one that another claim looked at and left), or a cursor (the metrics' folding: one
  replica's scrape at a time folds what came since the last).

:func:`hold` holds one until the transaction ends: inside :meth:`Database.batch`, until the
batch commits (or its next ``outside``), so that the rows the check allowed are written
before another replica checks. SQLite has one writer at a time: there it does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from engine.store.db import Database

__all__ = ["SCOPES", "Scope", "hold", "try_hold"]

Scope = Literal["budget", "cooldown", "silences", "claims", "metrics"]

SCOPES: dict[Scope, int] = {"budget": 2, "cooldown": 3, "silences": 4, "claims": 5,
                         "metrics": 6}
"""Each scope's class (the first key of PostgreSQL's two-key advisory locks, a space apart
from the one-key locks of migrations and leases); the second key is a hash of the key."""


def hold(db: Database, scope: Scope, key: str = "", *, conn: Any = None) -> None:
    """Hold the advisory lock of (``scope``, ``key``) until this thread's transaction ends
    (waiting for a transaction of another replica that holds it); on ``conn``, the
    connection of a ``write()`` under way, if given. Call it inside :meth:`Database.batch`
    (or the ``write()`` whose check it guards): outside one, the lock ends with the call. Two
    keys whose hashes collide share a lock: they only wait for each other."""
    if db.dialect.name != "postgresql":
        return
    sql = f"SELECT pg_advisory_xact_lock({SCOPES[scope]}, hashtext(?))"
    if conn is not None:
        conn.execute(sql, (key,))
        return
    with db.write() as held:
        held.execute(sql, (key,))


def try_hold(db: Database, scope: Scope, *, conn: Any) -> bool:
    """:func:`hold` on ``conn``'s transaction without waiting: False if another transaction
    holds it (for work that another replica doing it now makes needless). SQLite: True."""
    if db.dialect.name != "postgresql":
        return True
    row = conn.execute(f"SELECT pg_try_advisory_xact_lock({SCOPES[scope]}, hashtext('')) AS got"
                       ).fetchone()
    return bool(row["got"])
