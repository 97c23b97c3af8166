"""Build playbook sets and events for the rules tests (JSON is YAML: rules written as data)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from engine.events import ErrorEvent
from engine.rules.load import load_playbooks
from engine.rules.ruleset import PlaybookSet
from tests.fixtures.playbooks import small_actions

_COUNTER = itertools.count()


def playbook_set(tmp_path: Path, *rules: dict[str, Any]) -> PlaybookSet:
    """A set of one file holding ``rules`` (ids r0, r1, ... unless given)."""
    named = [{"id": f"r{i}", **rule} for i, rule in enumerate(rules)]
    path = tmp_path / f"p{next(_COUNTER)}.yaml"
    path.write_text(json.dumps({"name": "t", "rules": named}, indent=1))
    return load_playbooks([path], small_actions())


def event(**fields: Any) -> ErrorEvent:
    """A firing ADF activity event unless told otherwise."""
    base: dict[str, Any] = {
        "source": "adf", "kind": "activity_run", "status": "firing", "dedup_key": "k"
    }
    return ErrorEvent(**{**base, **fields})
