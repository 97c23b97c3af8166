"""``remediator serve`` says at start what ``validate --config`` would warn about (issue 15,
item 10): the playbooks run, and the log names what they lack."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_serve import _serve

PLAYBOOK = """\
name: lacking
rules:
  - id: tell
    match: {source: adf, attributes.pipline: pl_sales}
    actions:
      - action: notify.webhook
        with: {channel: data-oncal, text: "{{ event.resource }}"}
"""


def test_serve_logs_the_playbooks_warnings_at_start(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "rules.yaml").write_text(PLAYBOOK)
    settings = '[clouds.channels.data-oncall]\nurl = "https://hooks.example.com/T0/B0/x"\n'
    with _serve(tmp_path, playbooks, settings=settings) as (_, log_path, _process):
        lines = [json.loads(line) for line in log_path.read_text().splitlines()
                 if line.startswith("{")]
    warned = [(line["level"], line["problem"]) for line in lines
              if line.get("event") == "playbook_warning"]
    where = playbooks / "rules.yaml"
    assert warned == [
        ("warning", f"{where}:4:26: warning: `attributes.pipline`: no sender or enrichment sets"
                    " this attribute on adf events; did you mean `attributes.pipeline`?"),
        ("warning", f"{where}:7:25: warning: `notify.webhook`: channel `data-oncal` is not in"
                    f" [clouds.channels] of {tmp_path / 'remediator.toml'}; did you mean"
                    " `data-oncall`?"),
    ]
