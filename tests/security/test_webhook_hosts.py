"""A playbook's ``url:`` reaches only a host the settings allow (issue 14, item 9): a URL whose
host is templated from the event is refused by ``remediator validate`` (and so by the
server's loader), and the rendered URL's host is checked against ``[clouds] allowed_hosts``
and the configured channels' and ticket's hosts before any request, over the running service
with the loopback webhook sink as the would-be receiver."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from cli.drive import Sink
from engine.actions.context import ActionContext
from engine.actions.registry import action_table
from engine.errors import PermanentActionError
from engine.store import audit as audit_store
from tests.e2e.test_remediation import BLOB
from tests.engine.actions.conftest import adf_event, cloud_settings, params_for
from tests.fixtures.common import load_sample

NOTIFY = action_table()["notify.webhook"]
REFUSED = (
    "parameter `url` of action `notify.webhook`: a templated URL must write out its scheme and"
    " host before its first template (`https://host/{{ ... }}`): a host taken from the event"
    " could send the data anywhere")


def _playbook(url: str) -> str:
    return textwrap.dedent(f"""\
        name: hooks
        rules:
          - id: page-someone
            match: {{source: adf}}
            actions:
              - action: notify.webhook
                with: {{text: "pipeline failed", url: "{url}"}}
        """)


def test_validate_refuses_a_url_whose_host_comes_from_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("hooks.yaml").write_text(_playbook("https://{{ event.attributes.host }}/x"))
    result = CliRunner().invoke(main, ["validate", "hooks.yaml"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"hooks.yaml:7:46: {REFUSED}", "1 problem(s)"]
    # Every way of leaving the host to the event: all of it, or a host not ended by `/`.
    Path("hooks.yaml").write_text(textwrap.dedent("""\
        name: hooks
        rules:
          - id: page-someone
            match: {source: adf}
            actions:
              - action: notify.webhook
                with: {text: x, url: "{{ event.attributes.hook_url }}"}
              - action: notify.webhook
                with: {text: x, url: "https://hooks.example.com{{ event.attributes.path }}"}
              - action: notify.webhook
                with: {text: x, url: "https://hooks.example.com\\\\{{ event.resource }}"}
              - action: notify.webhook
                with: {text: x, url: "https://{% if true %}evil.example{% endif %}/x"}
        """))
    result = CliRunner().invoke(main, ["validate", "hooks.yaml"], catch_exceptions=False)
    assert result.stderr.splitlines() == [
        f"hooks.yaml:7:30: {REFUSED}", f"hooks.yaml:9:30: {REFUSED}",
        f"hooks.yaml:11:30: {REFUSED}", f"hooks.yaml:13:30: {REFUSED}", "4 problem(s)"]
    # A literal scheme and host with a templated path and query is fine.
    Path("hooks.yaml").write_text(
        _playbook("https://hooks.example.com/{{ event.resource }}?run={{ event.run_id }}"))
    result = CliRunner().invoke(main, ["validate", "hooks.yaml"], catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (0, "ok: 1 rule(s) in 1 file(s), 0 test(s)\n")


def _deliver(rig: Any, url: str) -> Any:
    """Load a playbook posting to ``url`` (the SIGHUP path), deliver a failure, run it."""
    (rig.playbooks / "rules.yaml").write_text(_playbook(url))
    assert rig.service.reload() == []
    rig.post("azure-monitor", copy.deepcopy(load_sample(BLOB)))
    assert rig.run() == 1
    [incident] = rig.incidents()
    return incident


def test_a_url_to_a_host_not_allowed_is_refused_before_any_request(service_rig: Any) -> None:
    rig = service_rig(_playbook("https://hooks.example.com/x"))
    port = rig.sink.url.rsplit(":", 1)[1]
    # The sink answers on localhost too, but only 127.0.0.1 (its channel's host) is allowed.
    incident = _deliver(rig, f"http://localhost:{port}/hooks/{{{{ event.resource }}}}")
    assert rig.sink.received == []
    message = (f"notify.webhook[url]: host 'localhost:{port}' is not allowed; add it to "
               "[clouds] allowed_hosts or post to a configured channel")
    assert incident.state == "escalated"
    assert incident.reason == f"rules.yaml:page-someone/actions[0]: {message}"
    records = audit_store.list_records(rig.db, incident_id=incident.id, limit=100)
    assert [r.data.get("error") for r in records if r.kind == "action_failed"] == [message]


def test_a_url_to_an_allowed_host_is_posted(service_rig: Any) -> None:
    rig = service_rig(_playbook("https://hooks.example.com/x"))
    incident = _deliver(rig, rig.sink.url + "/hooks/{{ event.resource }}")
    [got] = rig.sink.received
    assert got["path"] == "/hooks/pl_ingest_sales_daily"
    assert got["body"]["text"] == "pipeline failed"
    assert incident.state == "resolved"


def test_allowed_hosts_opens_a_host_and_nothing_else(sandbox: Any) -> None:
    from engine.cloud.clients import Clients

    sink = Sink()
    port = sink.url.rsplit(":", 1)[1]
    clients = Clients(cloud_settings(sandbox, allowed_hosts=[f"localhost:{port}"]))
    try:
        ctx = ActionContext(clients=clients)
        event = adf_event()
        NOTIFY.run(params_for(NOTIFY, event, text="x", url=f"http://localhost:{port}/a"),
                   event, ctx)
        assert [got["path"] for got in sink.received] == ["/a"]
        for url, error in (
            (f"http://127.0.0.1:{port}/b", f"host '127.0.0.1:{port}' is not allowed"),
            (f"http://localhost:{int(port) + 1}/c", f"host 'localhost:{int(port) + 1}' is not"),
            (f"http://localhost:{port}\\@127.0.0.2/d", "host '127.0.0.2' is not allowed"),
            (f"ftp://localhost:{port}/e", "only http and https URLs with a host are allowed"),
        ):
            with pytest.raises(PermanentActionError) as info:
                NOTIFY.run(params_for(NOTIFY, event, text="x", url=url), event, ctx)
            assert str(info.value).startswith(f"notify.webhook[url]: {error}"), url
        assert [got["path"] for got in sink.received] == ["/a"]
    finally:
        clients.close()
        sink.close()
