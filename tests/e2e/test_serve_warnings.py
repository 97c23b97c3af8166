"""``remediator serve`` tells the person who starts it, on stderr, what the playbooks ask that
the settings cannot do (issue 18, item 9): a ticket system, a channel, an LLM, a cloud
credential. An escalation that reaches nobody is found at start, not in an incident."""

from __future__ import annotations

from pathlib import Path

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
    with _serve(tmp_path, folder, settings=SETTINGS) as (_, log_path, _process):
        lines = log_path.read_text().splitlines()
    start = lines.index(
        f"remediator serve: 2 warning(s) about the playbooks and the settings (`remediator "
        f"validate --config {config} {folder}` says the same):")
    assert lines[start + 1:start + 4] == [
        f"  {rules}:7:25: warning: `notify.webhook`: channel `data-oncall` is not in "
        f"[clouds.channels] of {config} (defined: none)",
        f"  {rules}:8:17: note: `rca.analyze`: {config} has no [llm]: the analyses will be "
        "offline (the error catalog only)",
        f"  {rules}:10:17: warning: `ticket.create`: {config} has no [clouds.ticket]: no "
        "ticket would be opened",
    ]
