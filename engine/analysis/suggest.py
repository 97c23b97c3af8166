"""Checks on what the LLM wrote: evidence must be quoted from the input, and a suggested rule
must load with the real playbook loader against the real action table."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from engine.actions.base import ActionSpec
from engine.errors import PlaybookError
from engine.rules.load import load_playbooks

__all__ = ["check_evidence", "check_rule"]


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def check_evidence(quotes: list[str], source: str) -> tuple[list[str], int]:
    """The quotes that occur in ``source`` (whitespace and case aside), and how many did not."""
    haystack = _squash(source)
    kept = [q for q in quotes if q.strip() and _squash(q) in haystack]
    return kept, len(quotes) - len(kept)


def check_rule(text: str, actions: Mapping[str, ActionSpec]) -> str | None:
    """None if ``text`` (one rule in YAML, or a playbook with one ``rules:`` list) loads;
    else the first reason it does not."""
    try:
        data = YAML(typ="safe").load(text)
    except YAMLError as exc:
        return f"not YAML: {str(exc).splitlines()[0]}"
    if isinstance(data, dict) and "rules" in data:
        doc = {"name": "suggested", **data}
    elif isinstance(data, dict):
        doc = {"name": "suggested", "rules": [data]}
    elif isinstance(data, list):
        doc = {"name": "suggested", "rules": data}
    else:
        return "not a rule (expected a YAML mapping)"
    with tempfile.TemporaryDirectory(prefix="remediator-rule-") as tmp:
        path = Path(tmp) / "suggested.yaml"
        # JSON is YAML: the loader reads it, and positions stay meaningful enough.
        path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
        try:
            load_playbooks([path], actions)
        except PlaybookError as exc:
            return exc.problems[0].replace(str(path), "suggested_rule")
    return None
