"""``remediator silence add|list|expire``: through a running server's API (uvicorn on a free
port) and on the database of a stopped one (``--db``), audited with who."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine.store import audit as audit_store
from tests.cli.conftest import Served
from tests.fixtures.common import load_sample
from tests.receivers.test_api_silences import RULE, SAMPLE


@pytest.fixture
def served(service_rig: Any) -> Iterator[Served]:
    running = Served(service_rig(RULE, live=True))
    yield running
    running.stop()


def test_add_list_expire_through_the_api(served: Served) -> None:
    added = served.cli("silence", "add", "resource=~Copy_.*", "source=adf", "-c",
                       "ADF upgrade", "-d", "2h", "--who", "alice", "--json")
    assert added.exit_code == 0, added.stderr
    made = json.loads(added.stdout)
    assert (made["author"], made["text"], made["state"]) == (
        "alice", "resource=~Copy_.*, source=adf", "active")
    listed = served.cli("silence", "list")
    assert (listed.exit_code, listed.stdout) == (0, (
        f"{made['id']}  active  resource=~Copy_.*, source=adf  until {made['ends_at']}  "
        'by alice  "ADF upgrade"\n'))
    assert json.loads(served.cli("silence", "list", "--json").stdout) == [made]

    served.rig.post("azure-monitor", load_sample(SAMPLE))
    served.rig.run()
    [incident] = served.rig.incidents()
    assert incident.state == "ignored"
    assert incident.reason.startswith(f"silenced by {made['id']} ")

    gone = served.cli("silence", "expire", made["id"], "--who", "bob")
    assert gone.exit_code == 0
    assert gone.stdout.startswith(f"{made['id']}: expired by bob at ")
    again = served.cli("silence", "expire", made["id"])
    assert again.exit_code == 1
    assert again.stderr.startswith(f"remediator: silence {made['id']} already ended at ")
    empty = served.cli("silence", "list")
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "no active silence\n")
    ended = json.loads(served.cli("silence", "list", "--expired", "--json").stdout)
    assert [(s["id"], s["expired_by"]) for s in ended] == [(made["id"], "bob")]
    assert [(r.actor, r.data["decision"])
            for r in audit_store.list_records(served.rig.db, kind="silence")] == [
        ("alice", "created"), ("bob", "expired")]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["colour=red", "-c", "x", "-d", "1h"], 2, "remediator: matcher 'colour': unknown field; "
     "expected one of source, kind, target, resource, resource_id, error_code, failure_type, "
     "run_id or attributes.<path>\n"),
    (["source=adf", "-c", "x"], 2, "remediator: give exactly one of duration (e.g. 2h) and "
     "ends_at (an ISO time)\n"),
    (["source=adf", "-c", "x", "-d", "1h"], 1, None),
])
def test_refusals_exit_with_their_code(served: Served, args: list[str], code: int,
                                       message: str | None) -> None:
    if message is None:  # a key the server refuses
        result = served.cli("silence", "add", *args, key="wrong")
        message = (f"remediator: {served.url} refused the admin key (401): pass --key or set "
                   "REMEDIATOR_ADMIN_KEY to one of the server's REMEDIATOR_ADMIN_KEYS\n")
    else:
        result = served.cli("silence", "add", *args)
    assert (result.exit_code, result.stderr) == (code, message)


def test_on_the_database_of_a_stopped_service(service_rig: Any) -> None:
    rig = service_rig(RULE)
    db = rig.service.settings.db
    runner = CliRunner()
    added = runner.invoke(main, ["silence", "add", "source=adf", "-c", "nightly load off",
                                 "-d", "1h", "--db", db, "--who", "carol"])
    assert added.exit_code == 0, added.stderr
    silence_id = added.stdout.split(":")[0]
    assert added.stdout.startswith(f"{silence_id}: silenced source=adf from ")
    listed = runner.invoke(main, ["silence", "list", "--db", db, "--json"])
    assert [s["author"] for s in json.loads(listed.stdout)] == ["carol"]
    gone = runner.invoke(main, ["silence", "expire", silence_id, "--db", db, "--who", "dan"])
    assert gone.exit_code == 0 and gone.stdout.startswith(f"{silence_id}: expired by dan at ")
    bad = runner.invoke(main, ["silence", "expire", "nope", "--db", db])
    assert (bad.exit_code, bad.stderr) == (1, "remediator: unknown silence nope\n")
