"""The operators' hand (issue 18) attacked from outside: hostile cursors, invisible and
bidirectional characters in what a person types or the shared key's label, ids of any size,
two re-runs at once; the service answers 4xx saying why, never 500, and records nothing
a reader could be fooled by."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.store import audit as audit_store
from engine.store import handling as handling_store
from tests.fixtures.service import ADMIN, ADMIN_KEY
from tests.receivers.test_api_operators import APPROVAL, PLAIN, _incident, basic


@pytest.mark.parametrize("cursor", ["\u00b2", "\u0663", "\U0001d7d9"])
def test_a_cursor_of_unicode_digits_is_a_400(service_rig: Any, cursor: str) -> None:
    """``"²".isdigit()`` holds but ``int("²")`` fails: that was a 500."""
    rig, inc = _incident(service_rig)
    want = ("before: expected a timeline seq (the `next` of the page before), "
            f"got {cursor!r}")
    for path in ("/api/audit", f"/api/incidents/{inc}"):
        answer = rig.client.get(path, params={"before": cursor}, headers=ADMIN)
        assert (answer.status_code, answer.json()) == (
            400, {"error": "bad_request", "detail": want}), path


@pytest.mark.parametrize(("field", "path", "text"), [
    ("text", "notes", "approved by bob\u202egnp.exe"),
    ("text", "notes", "ok \u2066hidden\u2069"),
    ("note", "resolve", "fixed\u202d by bob"),
    ("assignee", "assign", "bob\u202e"),
    ("assignee", "assign", "b\u200bob"),
])
def test_bidirectional_and_invisible_characters_are_refused(service_rig: Any, field: str,
                                                            path: str, text: str) -> None:
    """A bidi override reorders what the dashboard and a terminal show (Trojan Source,
    CVE-2021-42574); an invisible one makes two names that read alike differ."""
    rig, inc = _incident(service_rig, PLAIN)
    what = "assignee" if field == "assignee" else "note"
    answer = rig.client.post(f"/api/incidents/{inc}/{path}", json={field: text},
                             headers=ADMIN)
    bad = next(c for c in text if c in "\u202e\u2066\u202d\u200b")
    assert (answer.status_code, answer.json()["detail"]) == (
        400, f"{what}: invisible or bidirectional control characters are not allowed "
             f"(U+{ord(bad):04X})")
    assert handling_store.notes(rig.db, inc) == []
    assert handling_store.get(rig.db, inc).assignee == ""


def test_notes_in_right_to_left_scripts_and_emoji_are_kept(service_rig: Any) -> None:
    rig, inc = _incident(service_rig, PLAIN)
    text = "\u05e9\u05dc\u05d5\u05dd fixed \U0001f469\u200d\U0001f4bb"  # Hebrew, a ZWJ emoji
    answer = rig.client.post(f"/api/incidents/{inc}/notes", json={"text": text}, headers=ADMIN)
    assert (answer.status_code, answer.json()["text"]) == (200, text)


def test_the_shared_keys_label_is_recorded_without_control_or_bidi_characters(
        service_rig: Any) -> None:
    """Basic auth's user name beside the shared admin key is a free label: an ESC sequence
    or a bidi override in it reached the audit log as the actor, and a terminal through
    ``remediator audit list``."""
    rig, inc = _incident(service_rig, APPROVAL)
    label = "\x1b[2J\x1b[31mmallory\u202e\x07\n(admin"
    answer = rig.client.post(f"/api/incidents/{inc}/ack", headers=basic(label, ADMIN_KEY))
    assert answer.status_code == 200
    assert answer.json()["acknowledged_by"] == "[2J[31mmallory(admin"
    [record] = audit_store.list_records(rig.db, incident_id=inc, kind="acknowledged")
    assert record.actor == "[2J[31mmallory(admin"


def test_an_unknown_incident_id_is_not_echoed_whole(service_rig: Any) -> None:
    rig, _ = _incident(service_rig, PLAIN)
    huge = "x" * 5000
    answer = rig.client.post(f"/api/incidents/{huge}/ack", headers=ADMIN)
    assert (answer.status_code, answer.json()["detail"]) == (
        404, f"unknown incident {'x' * 100}...")


def test_two_reruns_at_once_open_one_incident(service_rig: Any) -> None:
    """Two operators click Re-run at the same moment, on two threads: one new incident, the
    other click a 409 naming it."""
    rig, inc = _incident(service_rig)
    assert rig.client.post(f"/api/incidents/{inc}/reject", headers=ADMIN).status_code == 200
    start = threading.Barrier(2)
    answers: list[Any] = []

    def click() -> None:
        start.wait()
        answers.append(rig.client.post(f"/api/incidents/{inc}/rerun", headers=ADMIN))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    new = next(a for a in answers if a.status_code == 200).json()["incident_id"]
    refused = next(a for a in answers if a.status_code == 409).json()["detail"]
    assert refused == (f"incident {inc} was re-run already by admin as incident {new}: "
                       "re-run that one")
    assert [i.id for i in rig.incidents()] == [new, inc]


def test_ack_while_resolving_leaves_a_closed_incident(service_rig: Any) -> None:
    """An ack racing a resolve by hand: whichever comes second sees the other's result; the
    incident ends resolved and an ack after it is a 409."""
    rig, inc = _incident(service_rig, APPROVAL)
    start = threading.Barrier(2)
    answers: dict[str, Any] = {}

    def do(name: str, path: str, body: Any) -> None:
        start.wait()
        answers[name] = rig.client.post(f"/api/incidents/{inc}/{path}", json=body,
                                        headers=ADMIN)

    threads = [threading.Thread(target=do, args=("ack", "ack", None)),
               threading.Thread(target=do, args=("resolve", "resolve", {"note": "done"}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers["resolve"].status_code == 200
    assert answers["ack"].status_code in (200, 409)
    [incident] = rig.incidents()
    assert incident.state == "resolved"
    late = rig.client.post(f"/api/incidents/{inc}/ack", headers=ADMIN)
    assert late.status_code == 409


@pytest.mark.parametrize("headers", [
    {"sec-fetch-site": "same-site"}, {"sec-fetch-site": "cross-site"},
    {"referer": "http://127.0.0.1:9999/img.html"}])
def test_another_sites_page_cannot_start_a_walk_of_the_chain(service_rig: Any,
                                                             headers: dict[str, str]) -> None:
    """A page on another port of the host made chromium send its cached credentials with
    ``<img src=".../api/audit/verify">``: each image a walk of every record."""
    rig, _ = _incident(service_rig, PLAIN)
    answer = rig.client.get("/api/audit/verify", headers={**ADMIN, **headers})
    assert answer.status_code == 403
    assert answer.json()["detail"].endswith(
        "only this service's own pages may ask for this (it reads every record)")
    page = rig.client.get("/audit", params={"verify": "true"},
                          headers={**ADMIN, **headers})
    assert page.status_code == 403 and "reads every record" in page.text


def test_one_walk_of_the_chain_at_a_time(service_rig: Any) -> None:
    from receivers import verify as chain

    rig, _ = _incident(service_rig, PLAIN)
    own = {**ADMIN, "sec-fetch-site": "same-origin"}
    assert rig.client.get("/api/audit/verify", headers=own).json()["ok"] is True
    with chain.RUNNING:  # a walk under way
        busy = rig.client.get("/api/audit/verify", headers=ADMIN)
        page = rig.client.get("/audit", params={"verify": "true"}, headers=ADMIN)
    assert (busy.status_code, busy.json()) == (409, {"error": "conflict", "detail": chain.BUSY})
    assert page.status_code == 409 and "under way" in page.text
    assert rig.client.get("/api/audit/verify", headers=ADMIN).status_code == 200


def test_a_dashboard_form_that_does_not_parse_is_answered_as_a_page(service_rig: Any) -> None:
    """A field sent twice (``text=a&text=b``) failed validation before the handler and was
    answered in JSON to a person's browser."""
    rig, inc = _incident(service_rig, PLAIN)
    answer = rig.client.post(f"/incidents/{inc}/notes", content=b"text=a&text=b",
                             headers={**ADMIN, "content-type":
                                      "application/x-www-form-urlencoded"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "text: Expected `str`, got `array`" in answer.text
    assert handling_store.notes(rig.db, inc) == []


def test_nobody_acts_under_the_engines_name(service_rig: Any, tmp_path: Any) -> None:
    """``engine`` is the audit log's actor for what the engine did: the shared key's label
    ``engine`` made an acknowledgement read as the engine's."""
    from engine.config import load_settings
    from engine.errors import ConfigError
    from receivers.passwords import hash_password

    rig, inc = _incident(service_rig, APPROVAL)
    answer = rig.client.post(f"/api/incidents/{inc}/ack", headers=basic("Engine", ADMIN_KEY))
    assert answer.json()["acknowledged_by"] == "Engine (admin key)"
    config = tmp_path / "r.toml"
    config.write_text(f'[http.users]\nengine = "{hash_password("x" * 12, cost=(1024, 8, 1))}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert "users: 'engine' is the engine's own name in the audit log: choose another" in str(
        caught.value)
