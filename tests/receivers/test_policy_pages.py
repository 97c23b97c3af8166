"""The dashboard's Playbooks page lists the policies in force beside the rules."""

from __future__ import annotations

from typing import Any

from tests.fixtures.service import ADMIN

PLAYBOOK = """
name: t
policies:
  - id: copy-needs-approval
    description: copies wait for a person <b>
    match: {resource: {glob: "Copy_*"}}
rules:
  - id: rerun-blob
    match: {source: adf}
    actions: [{action: noop, with: {note: x}}]
"""


def test_the_playbooks_page_lists_the_policies(service_rig: Any) -> None:
    rig = service_rig(PLAYBOOK)
    html = rig.client.get("/playbooks", headers=ADMIN).text
    assert '<table id="policies" class="cards-on-phone">' in html
    assert (f'<tr><td>copy-needs-approval</td><td data-label="Where" class="id">'
            f'{rig.playbooks}/rules.yaml:4</td><td data-label="Description">copies wait for a '
            "person &lt;b&gt;</td>") in html
    assert '<code>{"resource": {"glob": "Copy_*"}}</code>' in html


def test_without_policies_the_page_has_no_policies_table(service_rig: Any) -> None:
    rig = service_rig("name: t\nrules:" + PLAYBOOK.split("rules:")[1])
    assert 'id="policies"' not in rig.client.get("/playbooks", headers=ADMIN).text
