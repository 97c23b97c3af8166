"""``remediator breakers`` and ``remediator reset-breaker``: through a running server's API
(uvicorn on a free port) and on the database of a stopped one (``--db``), audited with who."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from engine.clock import to_ms
from engine.events import utcnow
from engine.store import audit as audit_store
from engine.store import state as state_store
from tests.cli.conftest import Served
from tests.e2e.test_breakers_e2e import TARGET, TARGET_B, five_failures
from tests.e2e.test_guards_e2e import playbook
from tests.fixtures.service import ServiceRig

OPEN = {"rule_id": "rerun", "target": TARGET, "state": "open", "failures": 5,
        "opened_at": "2025-03-14T09:00:04Z", "until": "2025-03-14T09:30:04Z"}


@pytest.fixture
def served(service_rig: Any) -> Iterator[Served]:
    """A live rig whose breaker of rule ``rerun`` on pipeline A is open, served."""
    rig = service_rig(playbook(), live=True)
    five_failures(rig)
    running = Served(rig)
    yield running
    running.stop()


def resets(rig: ServiceRig) -> list[tuple[str, dict[str, Any]]]:
    return [(r.actor, r.data) for r in audit_store.list_records(rig.db, kind="breaker")
            if r.data["decision"] == "reset"]


def test_list_and_reset_through_the_api(served: Served) -> None:
    listed = served.cli("breakers")
    assert (listed.exit_code, listed.stdout) == (
        0, f"rerun  {TARGET}  open  5 failures  until 2025-03-14T09:30:04Z\n")
    assert json.loads(served.cli("breakers", "--json").stdout) == [OPEN]
    result = served.cli("reset-breaker", "rerun", "--target", TARGET, "--who", "alice",
                        "--reason", "pipeline fixed")
    assert (result.exit_code, result.stdout) == (
        0, f"rerun on {TARGET}: breaker reset by alice (was open, 5 failures)\n")
    assert resets(served.rig) == [("alice", {
        "rule_id": "rerun", "target": TARGET, "decision": "reset", "who": "alice",
        "reason": "pipeline fixed", "breakers": [OPEN]})]
    empty = served.cli("breakers")
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "no open circuit breaker\n")
    again = served.cli("reset-breaker", "rerun")
    assert (again.exit_code, again.stderr) == (
        1, "remediator: no circuit breaker to reset for rule rerun\n")


def test_reset_answers_json(served: Served) -> None:
    result = served.cli("reset-breaker", "rerun", "--who", "carol", "--json")
    assert (result.exit_code, json.loads(result.stdout)) == (
        0, {"rule_id": "rerun", "who": "carol", "reset": [OPEN]})


def test_reset_of_another_target_leaves_the_open_one(served: Served) -> None:
    other = served.cli("reset-breaker", "rerun", "--target", TARGET_B)
    assert (other.exit_code, other.stderr) == (
        1, f"remediator: no circuit breaker to reset for rule rerun on target {TARGET_B}\n")
    assert json.loads(served.cli("breakers", "--json").stdout) == [OPEN]


def _db_cli(rig: ServiceRig, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--db", rig.db.path])


def test_list_and_reset_on_the_database(service_rig: Any) -> None:
    rig: ServiceRig = service_rig(playbook(), live=True)
    now_ms = to_ms(utcnow())  # --db reads the wall clock: open the breaker by it
    for _ in range(5):
        state_store.record_outcome(rig.db, "rerun", TARGET_B, success=False, threshold=5,
                                   cool_off_ms=3_600_000, now_ms=now_ms)
    [row] = json.loads(_db_cli(rig, "breakers", "--json").stdout)
    assert (row["rule_id"], row["target"], row["state"], row["failures"]) == (
        "rerun", TARGET_B, "open", 5)
    result = _db_cli(rig, "reset-breaker", "rerun", "--who", "dave", "--reason", "quota raised")
    assert (result.exit_code, result.stdout) == (
        0, f"rerun on {TARGET_B}: breaker reset by dave (was open, 5 failures)\n")
    [(actor, data)] = resets(rig)
    assert (actor, data["who"], data["reason"], data["target"]) == (
        "dave", "dave", "quota raised", None)
    assert state_store.list_breakers(rig.db) == []
