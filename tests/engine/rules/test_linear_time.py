"""Playbook patterns on a 1 MB message finish (issue 14).

``column .* does not`` (the shipped adf-sql-schema-drift and synapse rules) backtracked under
``re``: 0.64 s on 70 KB, quadratic, so a 1 MB SQL error held the worker (and the GIL) for
minutes. The match runs in a child process; if it has not finished when the generous bound
expires, the test fails: nothing here measures how long it took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.common import ROOT

BOUND_S = 60

PLAYBOOK = """\
name: drift
rules:
  - id: column-drift
    match: {message: {regex: "column .* does not"}}
    continue: true
    actions: [{action: noop}]
  - id: column-drift-detail
    match: {attributes.detail: {regex: "(?i)column .* does not (?:exist|match)"}}
    continue: true
    actions: [{action: noop}]
  - id: glob-detail
    match: {attributes.detail: {glob: "*column*does not*"}}
    actions: [{action: noop}]
"""

CHILD = """\
import json, sys
from engine.actions.registry import action_table
from engine.events import ErrorEvent
from engine.rules.load import load_playbooks

def event(source, code, text):
    return ErrorEvent(source=source, kind="activity_run", status="firing", dedup_key=code,
                      error_code=code, message=text, attributes={"detail": text})

found = {}
for name, paths in (("drift", [sys.argv[1]]), ("shipped", [sys.argv[2]])):
    rules = load_playbooks(paths, action_table())
    for source in ("adf", "synapse"):
        for label, text in (("none", "column " * 150_000),
                            ("early", "column x does not exist; " + "column " * 150_000),
                            ("late", "column " * 150_000 + "x does not exist")):
            explained = rules.explain(event(source, "SqlOperationFailed", text))
            found[f"{name} {source} {label}"] = explained.rule_ids
print(json.dumps(found))
"""


def test_playbook_patterns_on_a_one_megabyte_message_finish(tmp_path: Path) -> None:
    playbook = tmp_path / "drift.yaml"
    playbook.write_text(PLAYBOOK)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(playbook), str(ROOT / "playbooks")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=BOUND_S,  # TimeoutExpired fails the test
    )
    assert result.returncode == 0, result.stderr
    drift = ["column-drift", "column-drift-detail", "glob-detail"]
    # The event keeps the first 64 Ki characters of its message, and a pattern reads that
    # much of an attribute: a "does not" a megabyte in is past what matching reads.
    assert json.loads(result.stdout) == {
        "drift adf none": [], "drift adf early": drift, "drift adf late": [],
        "drift synapse none": [], "drift synapse early": drift, "drift synapse late": [],
        "shipped adf none": ["adf-sql-operation-failed"],
        "shipped adf early": ["adf-sql-schema-drift"],
        "shipped adf late": ["adf-sql-operation-failed"],
        "shipped synapse none": ["synapse-sql-operation-failed"],
        "shipped synapse early": ["synapse-sql-schema-drift"],
        "shipped synapse late": ["synapse-sql-operation-failed"],
    }
