"""The CLI against a server that is not Remediator, or lies: answers that are not JSON, JSON of
another shape or nested past sense, a redirect elsewhere, an endless body, a body that
trickles; and the audit log's own records written to a terminal. Every command ends with
exit 1 and a sentence, never a traceback, having read a bounded amount."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from cli import main
from cli.audit import run_list
from cli.client import Target
from engine.events import utcnow
from engine.store import audit as audit_store
from tests.fixtures.dashboard import Seeded

KEY = "admin-key-of-the-test"
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # cli/client.py's bound
EVENT = "evt_hostile0001"


class _Hostile(BaseHTTPRequestHandler):
    """The first path segment picks the lie; a receiver's POST is accepted (202) with an
    event id, so that ``send-test --wait`` goes on to read back."""

    protocol_version = "HTTP/1.0"
    sent: ClassVar[list[int]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json",
              **headers: str) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        mode = self.path.split("/")[1]
        if mode == "accepted-html":
            return self._send(202, b"<html>thanks</html>", "text/html")
        if mode == "accepted-list":
            return self._send(202, b"[1, 2]")
        return self._send(202, json.dumps({"event_id": EVENT, "status": "firing"}).encode())

    def do_GET(self) -> None:
        mode = self.path.split("/")[1]
        if self.path.split("?")[0].endswith("/api/status") and mode != "garbage":
            return self._send(200, b'{"paused": false}')
        if mode == "garbage":
            return self._send(200, b"<html>a login page</html>", "text/html")
        if mode == "deep":
            return self._send(200, b"[" * 200_000 + b"]" * 200_000)
        if mode == "shape":
            return self._send(200, b'{"records": [{"seq": "x"}], "items": 5, "state": "done"}')
        if mode == "redirect":
            return self._send(302, b"", location="http://127.0.0.1:9/api/audit")
        if mode == "endless":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            chunk = b"[" + b"0," * 32768
            try:
                while True:
                    self.wfile.write(chunk)
                    _Hostile.sent.append(len(chunk))
            except OSError:
                return None
        if mode == "trickle":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return None
        return self._send(404, b'{"error": "not_found"}')


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"REMEDIATOR_ADMIN_KEY": KEY})
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exc_info)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("mode", "says"), [
    ("garbage", "answered 200 with something that is not JSON: '<html>a login page</html>'"),
    ("deep", "answered 200 with something that is not JSON: '[[[["),
    ("shape", "answered JSON of another shape than Remediator's: "),
    ("redirect", "answered 302 Found"),
])
def test_audit_list_and_verify_against_a_server_that_is_not_remediator(
        hostile: str, mode: str, says: str) -> None:
    for command in (("audit", "list"), ("audit", "verify")):
        code, out, err = run(*command, "--url", f"{hostile}/{mode}")
        assert (code, out) == (1, ""), command
        assert err.startswith("remediator: ") and says in err, (command, err)
        assert "Traceback" not in err


def test_an_endless_answer_is_read_to_the_bound_only(hostile: str) -> None:
    _Hostile.sent.clear()
    code, out, err = run("audit", "list", "--url", f"{hostile}/endless")
    assert (code, out) == (1, "")
    assert err == (f"remediator: {hostile}/endless/api/audit: the answer is larger than "
                   f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB: not a Remediator server?\n")
    assert sum(_Hostile.sent) < 2 * MAX_ANSWER_BYTES


def test_an_answer_that_trickles_ends_at_the_commands_time(hostile: str,
                                                          capsys: Any) -> None:
    code = run_list(Target(url=f"{hostile}/trickle", key=KEY, timeout=0.5), incident=None,
                    resource=None, kind=None, since=None, limit=10, as_json=True)
    assert code == 1
    assert capsys.readouterr().err == (
        f"remediator: {hostile}/trickle/api/audit: no complete answer within 0.5 s\n")


@pytest.mark.parametrize(("mode", "says"), [
    ("garbage", "cannot read /events/evt_hostile0001 back: answered 200 with something "
                "that is not JSON: '<html>a login page</html>'"),
    ("shape", "answered JSON of another shape than Remediator's"),
    ("deep", "cannot read /events/evt_hostile0001 back: answered 200 with something that "
             "is not JSON"),
    ("trickle", "cannot read /events/evt_hostile0001 back: no complete answer within"),
])
def test_send_test_wait_against_a_server_that_answers_garbage(hostile: str, mode: str,
                                                              says: str) -> None:
    code, _, err = run("send-test", "adf", "--url", f"{hostile}/{mode}", "--key", "k",
                       "--admin-key", KEY, "--wait", "1")
    assert code == 1
    assert says in err, err


@pytest.mark.parametrize("mode", ["accepted-html", "accepted-list"])
def test_send_test_of_a_202_that_is_not_json(hostile: str, mode: str) -> None:
    code, out, err = run("send-test", "adf", "--url", f"{hostile}/{mode}", "--key", "k",
                         "--admin-key", KEY, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["status"] == 202


def test_audit_list_writes_records_as_text_not_markup_nor_escapes(seeded: Seeded) -> None:
    """A note (or any recorded text) reading ``[/bold]`` crashed ``audit list`` (Rich took it
    as markup); an ESC in the shared key's label reached the terminal."""
    db = seeded.rig.db
    audit_store.append(db, "note", ts=utcnow(), actor="ops\x1b[2J", incident_id="inc_x",
                       data={"text": "closing [/bold] tag, [red]not red[/red]"})
    code, out, err = run("audit", "list", "--db", db.path, "--kind", "note")
    assert (code, err) == (0, "")
    assert "[/bold]" in out and "[red]not red[/red]" in out
    assert "\x1b" not in out and "ops\\u001b[2J" in out


def test_incidents_print_a_senders_bidi_override_as_an_escape(service_rig: Any) -> None:
    """A resource name is whatever failed: a bidi override in it (the receivers keep it)
    reversed the rest of the line in the operator's terminal."""
    from tests.e2e.test_remediation import APPROVAL, BLOB
    from tests.fixtures.common import load_sample

    rig = service_rig(APPROVAL, live=True)
    sample = json.loads(json.dumps(load_sample(BLOB)).replace(
        "pl_ingest_sales_daily", "pl_\\u202eyliad"))
    rig.post("azure-monitor", sample)
    rig.run()
    code, out, err = run("incidents", "--db", rig.db.path)
    assert (code, err) == (0, "")
    assert "\u202e" not in out and "pl_\\u202eyliad" in out
    code, out, err = run("events", "list", "--db", rig.db.path)
    assert code == 0 and "\u202e" not in out


@pytest.mark.parametrize(("command", "says"), [
    (("incidents",), "/api/incidents: answered 'items' that is not a list of objects"),
    (("events", "list"), "/api/events: answered 'items' that is not a list of objects"),
    (("breakers",), "/api/breakers: answered 'items' that is not a list of objects"),
    (("ack", "inc_1"), "/api/incidents/inc_1/ack: answered JSON without 'acknowledged_by'"),
    (("assign", "inc_1", "bob"), "/assign: answered JSON without 'assignee'"),
    (("note", "inc_1", "hi"), "/notes: answered JSON without 'id'"),
    (("resolve", "inc_1", "--note", "x"), "/resolve: answered JSON without 'state'"),
    (("rerun", "inc_1"), "/rerun: answered JSON without 'who'"),
])
def test_operating_commands_against_answers_of_another_shape(hostile: str,
                                                             command: tuple[str, ...],
                                                             says: str) -> None:
    code, out, err = run(*command, "--url", f"{hostile}/shape")
    assert (code, out) == (1, "")
    assert err.startswith(f"remediator: {hostile}/shape/api/") and says in err, err
    assert err.endswith(": is it Remediator?\n")
