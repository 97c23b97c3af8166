"""The one builder of the store's WHERE clauses: optional filters in, SQL and its parameters out.

A list query takes filters that may each be absent (``None``: no condition); every value goes
in as a ``?`` parameter, and column names come only from the calling code, never from input
(in the spirit of Alertmanager's silence ``QueryParam``: one way to state a filter, so that
every list of the store filters alike)::

    where = Where().equal(kind=kind, resource=resource).at_least("ts_ms", since_ms)
    db.query(f"SELECT * FROM audit{where.sql} ORDER BY seq DESC LIMIT ?", [*where.params, 50])
"""

from __future__ import annotations

from typing import Any

__all__ = ["Where"]


class Where:
    """Conditions joined with AND; a filter whose value is ``None`` adds none."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def equal(self, **columns: Any) -> Where:
        """``column = ?`` for each column given a value, in the order given."""
        for column, value in columns.items():
            self.where(f"{column} = ?", value)
        return self

    def at_least(self, column: str, value: Any) -> Where:
        """``column >= ?`` (a lower bound: since a time)."""
        return self.where(f"{column} >= ?", value)

    def where(self, clause: str, value: Any) -> Where:
        """``clause`` with its one ``?`` bound to ``value``, unless ``value`` is None."""
        if value is not None:
            self.clauses.append(clause)
            self.params.append(value)
        return self

    def any_of(self, **columns: Any) -> Where:
        """One condition: ``(a = ? OR b = ?)`` over the columns given a (non-empty) value; no
        condition at all when none is (see :attr:`empty`)."""
        given = [(column, value) for column, value in columns.items() if value]
        if given:
            self.clauses.append("(" + " OR ".join(f"{c} = ?" for c, _ in given) + ")")
            self.params.extend(value for _, value in given)
        return self

    @property
    def empty(self) -> bool:
        """Whether no condition was added."""
        return not self.clauses

    @property
    def sql(self) -> str:
        """`` WHERE a AND b`` (with its leading space), or ``""`` for no condition."""
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""

    def also(self, clause: str) -> str:
        """:attr:`sql` with a fixed ``clause`` (no parameter) ANDed to it."""
        return " WHERE " + " AND ".join([*self.clauses, clause])
