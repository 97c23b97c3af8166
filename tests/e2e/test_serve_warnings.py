"""``remediator serve`` tells the person who starts it, on stderr, what the playbooks ask that
the settings cannot do (issue 18, item 9): a ticket system, a channel, an LLM, a cloud
credential. An escalation that reaches nobody is found at start, not in an incident. In
sentences for a person (a terminal, or ``log_format = "console"``); a JSON log stays JSON."""

from __future__ import annotations

import json
from pathlib import Path

from cli.serve import NO_NOTIFICATIONS
from tests.e2e.test_serve import _serve

PLAYBOOK = """\
name: t
rules:
  - id: tell
    match: {source: adf}
    actions:
      - action: notify.webhook
        with: {channel: data-oncall, text: "{{ event.resource }} failed"}
      - action: rca.analyze
    on_failure:
      - action: ticket.create
        with: {title: "{{ event.resource }} still failing"}
"""
SETTINGS = """\
[clouds.adf.prod]
subscription_id = "5c1a8e2f-7d3b-4e9a-9f21-0b6d3c4a8e17"
resource_group = "rg-dataplatform-prod"
credential = {type = "managed_identity"}
"""


def test_serve_says_at_start_what_the_settings_cannot_do(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "rules.yaml").write_text(PLAYBOOK)
    config = tmp_path / "remediator.toml"
    rules = folder / "rules.yaml"
    with _serve(tmp_path, folder, settings=SETTINGS,
                extra_env={"REMEDIATOR_LOG_FORMAT": "console"}) as (_, log_path, _process):
        lines = log_path.read_text().splitlines()
    start = lines.index(
        f"remediator serve: 2 warning(s) about the playbooks and the settings (`remediator "
        f"validate --config {config} {folder}` says the same):")
    assert lines[start + 1:start + 5] == [
        f"  {rules}:7:25: warning: `notify.webhook`: channel `data-oncall` is not in "
        f"[clouds.channels] of {config} (defined: none)",
        f"  {rules}:8:17: note: `rca.analyze`: {config} has no [llm]: the analyses will be "
        "offline (the error catalog only)",
        f"  {rules}:10:17: warning: `ticket.create`: {config} has no [clouds.ticket]: no "
        "ticket would be opened",
        NO_NOTIFICATIONS,
    ]


def test_a_json_log_stream_stays_json_and_carries_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "playbooks"
    folder.mkdir()
    (folder / "rules.yaml").write_text(PLAYBOOK)
    with _serve(tmp_path, folder, settings=SETTINGS) as (_, log_path, _process):
        records = [json.loads(line) for line in log_path.read_text().splitlines()
                   if line.strip()]
    told = [(r["event"], r["problem"].split(": ", 2)[-1]) for r in records
            if r["event"] in ("playbook_warning", "playbook_note", "no_notifications")]
    assert told == [
        ("playbook_warning", "`notify.webhook`: channel `data-oncall` is not in "
                             f"[clouds.channels] of {tmp_path / 'remediator.toml'} "
                             "(defined: none)"),
        ("playbook_note", f"`rca.analyze`: {tmp_path / 'remediator.toml'} has no [llm]: the "
                          "analyses will be offline (the error catalog only)"),
        ("playbook_warning", f"`ticket.create`: {tmp_path / 'remediator.toml'} has no "
                             "[clouds.ticket]: no ticket would be opened"),
        ("no_notifications", "an incident that escalates or waits for approval is announced "
                             "nowhere but the dashboard and /api (docs/DEPLOY.md, \"Every "
                             "section of the settings\")"),
    ]
