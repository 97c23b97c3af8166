"""The playbook set in force, swapped whole on reload.

A reload loads the files into a new set first; only a set without problems replaces the
current one, under a lock, so readers see either the old set or the new one, never half of
either. The HTTP API and SIGHUP call :meth:`ActivePlaybooks.reload`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine.actions.base import ActionSpec
from engine.errors import PlaybookError
from engine.rules.load import load_playbooks
from engine.rules.ruleset import PlaybookSet

__all__ = ["ActivePlaybooks"]


class ActivePlaybooks:
    """Holds the current :class:`PlaybookSet` of ``paths``.

    The constructor loads the set and raises PlaybookError if it does not load: a server
    must not start on broken playbooks. Afterwards :meth:`reload` never raises for a broken
    set; it returns the problems and keeps the old set. Neither checks nor loads the tests in
    the files (``remediator validate`` does): a test is not a rule, and a test's missing
    payload file must not keep rules out of force.
    """

    def __init__(self, paths: Iterable[str | Path], actions: Mapping[str, ActionSpec]) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.actions = dict(actions)
        self._lock = threading.Lock()
        self._current = load_playbooks(self.paths, self.actions, check_tests=False)
        self._generation = 1

    @property
    def current(self) -> PlaybookSet:
        """The set in force: always fully loaded. Take it once per event and keep using it."""
        return self._current

    @property
    def generation(self) -> int:
        """How many sets have been in force (1 after start); grows on each successful
        reload."""
        return self._generation

    def reload(self) -> list[str]:
        """Load the files again; swap the set in only if it loads. Returns the problems
        (empty on success), each ``file:line:col: message``."""
        with self._lock:
            try:
                fresh = load_playbooks(self.paths, self.actions, check_tests=False)
            except PlaybookError as exc:
                return list(exc.problems)
            self._current = fresh
            self._generation += 1
            return []

    def rules_summary(self) -> list[dict[str, Any]]:
        """The rules of the current set, for ``GET /api/playbooks``."""
        return self._current.rules_summary()
