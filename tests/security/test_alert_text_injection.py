"""Alert text is the sender's, not ours: a pipeline name (or any event-supplied value) posted in
a real Azure Monitor webhook, processed by the engine and delivered to the webhook sink arrives
escaped for each channel's markup: Slack mrkdwn (``&``, ``<``, ``>`` as entities, so no
``<!channel>``, mention or ``<url|text>`` link), a Teams Adaptive Card (markdown punctuation
backslash-escaped), and plain text for tickets and JSON webhooks (control and invisible
characters removed, lengths bounded). The playbook author's own markup, such as a runbook link,
still works."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_guards_e2e import alert
from tests.e2e.test_names_e2e import named
from tests.fixtures.service import ServiceRig

PLAYBOOK = r"""
name: alerts
rules:
  - id: tell
    match: {source: adf}
    actions:
      - action: notify.webhook
        with:
          channel: slack
          text: "Pipeline *{{ event.resource }}* failed. Runbook: <https://wiki.example/runbooks/adf|runbook>"
      - action: notify.webhook
        with:
          channel: teams
          text: "Pipeline **{{ event.resource }}** failed. See the [runbook](https://wiki.example/runbooks/adf)."
      - action: ticket.create
        with:
          title: "{{ event.resource }} failed"
          body: "Pipeline {{ event.resource }} failed.\nRunbook: https://wiki.example/runbooks/adf"
"""

# No such name is a valid Data Factory pipeline name, so enrichment asks the cloud nothing
# about it (engine/cloud/names.py) and the alert keeps its own code.
CODE = "2200"

# name: (PipelineName as posted, as Slack mrkdwn shows it, as a Teams card shows it,
#        as plain text on one line (ticket title), as plain text (ticket body))
CASES: dict[str, tuple[str, str, str, str, str]] = {
    "channel ping and a disguised link": (
        "<!channel> <https://evil.example/sso|Open incident (login required)>",
        "&lt;!channel&gt; &lt;https://evil.example/sso|Open incident (login required)&gt;",
        r"\<!channel\> \<https://evil.example/sso|Open incident \(login required\)\>",
        "<!channel> <https://evil.example/sso|Open incident (login required)>",
        "<!channel> <https://evil.example/sso|Open incident (login required)>"),
    "@here, and <!here> with a label": (
        "@here <!here|here> wake up",
        "@here &lt;!here|here&gt; wake up",
        r"@here \<!here|here\> wake up",
        "@here <!here|here> wake up", "@here <!here|here> wake up"),
    "everyone, a user and a channel": (
        "<!everyone> <@U024BE7LH> <#C024BE7LR>",
        "&lt;!everyone&gt; &lt;@U024BE7LH&gt; &lt;#C024BE7LR&gt;",
        r"\<!everyone\> \<@U024BE7LH\> \<#C024BE7LR\>",
        "<!everyone> <@U024BE7LH> <#C024BE7LR>", "<!everyone> <@U024BE7LH> <#C024BE7LR>"),
    "a markdown link and a Teams mention": (
        "[click](https://evil.example/sso) <at>ops</at>",
        "[click](https://evil.example/sso) &lt;at&gt;ops&lt;/at&gt;",
        r"\[click\]\(https://evil.example/sso\) \<at\>ops\</at\>",
        "[click](https://evil.example/sso) <at>ops</at>",
        "[click](https://evil.example/sso) <at>ops</at>"),
    "emphasis and code": (
        "**bold** _it_ `code` ~strike~ a&b",
        "**bold** _it_ `code` ~strike~ a&amp;b",
        r"\*\*bold\*\* \_it\_ \`code\` \~strike\~ a&b",
        "**bold** _it_ `code` ~strike~ a&b", "**bold** _it_ `code` ~strike~ a&b"),
    "line breaks that forge lines": (
        "pl_daily\nApproved by admin\r\n- [x] closed",
        "pl_daily Approved by admin - [x] closed",
        r"pl_daily Approved by admin - \[x\] closed",
        "pl_daily Approved by admin - [x] closed",
        "pl_daily\nApproved by admin\n- [x] closed"),
    "zero-width, bidi and control characters": (
        "pl\u200b_daily\u202e\x07\x1b[31mred\x1b[0m\ufeff",
        "pl_daily[31mred[0m",
        r"pl_daily\[31mred\[0m",
        "pl_daily[31mred[0m", "pl_daily[31mred[0m"),
    "forged untrusted-text marks": (
        "a\ue001<!channel>\ue000b",
        "a&lt;!channel&gt;b",
        r"a\<!channel\>b",
        "a<!channel>b", "a<!channel>b"),
}


def hostile_alert(name: str) -> dict[str, Any]:
    """The blob-missing log alert with ``name`` as its PipelineName."""
    return named(alert(1), name)


def delivered(service_rig: Any, name: str) -> ServiceRig:
    rig: ServiceRig = service_rig(PLAYBOOK, live=True,
                                  channels={"slack": "slack", "teams": "teams"},
                                  notifications={"channels": ["slack", "teams"]})
    rig.post("azure-monitor", hostile_alert(name))
    assert rig.run() == 1
    [incident] = rig.incidents()
    assert (incident.state, incident.reason) == ("resolved", "actions succeeded; nothing to verify")
    return rig


def bodies(rig: ServiceRig) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for request in rig.sink.received:
        found.setdefault(request["path"], []).append(request["body"])
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_event_text_is_escaped_for_slack_teams_and_the_ticket(service_rig: Any,
                                                              case: str) -> None:
    posted, in_slack, in_teams, one_line, in_body = CASES[case]
    rig = delivered(service_rig, posted)
    [slack], [teams], [ticket] = (bodies(rig)[p] for p in ("/slack", "/teams", "/tickets"))

    title = f"adf {in_slack}: {CODE}"
    text = f"Pipeline *{in_slack}* failed. Runbook: <https://wiki.example/runbooks/adf|runbook>"
    assert slack["text"] == f"{title}: {text}"
    assert slack["blocks"][0] == {"type": "header", "text": {"type": "plain_text",
                                                             "text": title}}
    assert slack["blocks"][1] == {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    assert {"type": "mrkdwn", "text": f"*Resource*\n{in_slack}"} in slack["blocks"][2]["fields"]

    card = teams["attachments"][0]["content"]
    assert card["body"][0]["text"] == f"adf {in_teams}: {CODE}"
    assert card["body"][1] == {"type": "TextBlock", "wrap": True, "text": (
        f"Pipeline **{in_teams}** failed. See the [runbook](https://wiki.example/runbooks/adf).")}
    assert {"title": "Resource", "value": in_teams} in card["body"][2]["facts"]

    assert ticket["title"] == f"{one_line} failed"
    assert ticket["body"] == f"Pipeline {in_body} failed.\nRunbook: https://wiki.example/runbooks/adf"
    assert ticket["event"]["resource"] == in_body


def test_the_incident_notification_escapes_the_name_too(service_rig: Any) -> None:
    posted, in_slack, in_teams, _, _ = CASES["channel ping and a disguised link"]
    rig = delivered(service_rig, posted)
    assert rig.service.notifier is not None
    assert rig.service.notifier.tick() == 1
    slack, teams = (bodies(rig)[p][-1] for p in ("/slack", "/teams"))
    said = "is resolved: actions succeeded; nothing to verify"
    assert slack["blocks"][0]["text"]["text"] == f"[resolved] {in_slack}: {CODE}"
    assert slack["blocks"][1]["text"]["text"] == f"{in_slack} {said} ({CODE})"
    card = teams["attachments"][0]["content"]
    assert card["body"][0]["text"] == f"[resolved] {in_teams}: {CODE}"
    assert card["body"][1]["text"] == f"{in_teams} {said} ({CODE})"
