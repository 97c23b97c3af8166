"""A poison pill against the real ``remediator serve --live``: an event whose stages stall every
time, the process killed with SIGKILL mid-stall and restarted, again and again. After
``max_claims`` claims the next start parks the event instead of stalling on it once more; the
service stays healthy and processes other events; an admin's replay runs it again.

The stall is real and picked, not guessed: the ADF emulator holds back the answer of the
enrichment's ``queryActivityruns`` (a scripted hang), and the test kills the process as soon as
that request has arrived, long before the client's 5 s timeout would let the stage go on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.store import audit as audit_store
from engine.store import inbox
from engine.store.db import Database
from scripts._harness import (
    ADMIN_KEY,
    Zygote,
    adf_failure,
    make_serve,
    post_failure,
    rerun_calls,
)
from tests.reliability.conftest import poll

STARTUP_S = 180.0  # a cold start imports every SDK; loaded machines are slow
SETTLE_S = 120.0
MAX_CLAIMS = 3
LEASE_S = 10  # longer than a fresh process takes from the claim to the stalled call


@pytest.fixture
def serve(tmp_path: Path, sandbox: Any) -> Iterator[Any]:
    """``remediator serve --config FILE`` (live, 10 s leases, ``max_claims = 3``), forked from
    a process that did the slow imports once, so that each restart is quick."""
    zygote = Zygote()
    process = make_serve(tmp_path, sandbox, zygote=zygote, lease_s=LEASE_S,
                         max_claims=MAX_CLAIMS)
    yield process
    process.stop()
    zygote.close()


def _enrichment_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.calls("adf") if c["path"].endswith("/queryActivityruns")]


def _state(db: Database, event_id: str) -> inbox.StoredEvent:
    stored = inbox.get(db, event_id)
    assert stored is not None
    return stored


def test_a_stage_that_stalls_every_time_is_parked_after_max_claims_kills(
        serve: Any, sandbox: Any) -> None:
    sandbox.script("adf", "adf.queryActivityruns", hang=600, times=MAX_CLAIMS)
    serve.start(bound_s=STARTUP_S)
    with httpx.Client(timeout=30) as client:
        answer = post_failure(client, serve.url, adf_failure("poison", sandbox=sandbox))
    assert answer.status_code == 202
    poison = answer.json()["event_id"]
    db = Database(str(serve.config.parent / "remediator.db"))
    try:
        for claim in range(1, MAX_CLAIMS + 1):
            poll(lambda n=claim: len(_enrichment_calls(sandbox)) == n, bound_s=SETTLE_S,
                 what=f"claim {claim} stalling in the enrichment call")
            serve.kill9()
            # Killed inside the stall: the stage never went on (no enriched record).
            stored = _state(db, poison)
            assert (stored.state, stored.attempts) == ("processing", claim)
            assert audit_store.list_records(db, event_id=poison, kind="enriched") == []
            serve.start(bound_s=STARTUP_S)

        poll(lambda: _state(db, poison).state == "parked", bound_s=SETTLE_S,
             what="the poison event parked")
        stored = _state(db, poison)
        reason = (f"claimed {MAX_CLAIMS} times without finishing: its stages crashed or "
                  "stalled each time")
        assert (stored.attempts, stored.reason) == (MAX_CLAIMS, reason)
        [parked] = audit_store.list_records(db, event_id=poison, kind="parked")
        assert (parked.actor, parked.data["claims"]) == ("engine", MAX_CLAIMS)
        assert len(_enrichment_calls(sandbox)) == MAX_CLAIMS  # not stalled on a 4th time

        with httpx.Client(timeout=30) as client:
            assert client.get(f"{serve.url}/health").status_code == 200
            admin = {"x-api-key": ADMIN_KEY}
            listed = client.get(f"{serve.url}/api/events", params={"state": "parked"},
                                headers=admin).json()
            assert [i["id"] for i in listed["items"]] == [poison]
            # Other events go on meanwhile.
            other = post_failure(client, serve.url, adf_failure(
                "healthy", sandbox=sandbox)).json()["event_id"]
            poll(lambda: _state(db, other).state == "done", bound_s=SETTLE_S,
                 what="another event processed")
            assert [c["path"].rsplit("/pipelines/", 1)[1] for c in rerun_calls(sandbox)] == [
                "pl_healthy/createRun"]

            # The cause is gone (the emulator answers now): an admin replays the event.
            replayed = client.post(f"{serve.url}/api/events/{poison}/replay",
                                   json={"reason": "emulator fixed"}, headers=admin)
            assert (replayed.status_code, replayed.json()["state"]) == (200, "pending")
            poll(lambda: _state(db, poison).state == "done", bound_s=SETTLE_S,
                 what="the replayed event processed")
            assert _state(db, poison).attempts == 1
            assert sorted(c["path"].rsplit("/pipelines/", 1)[1]
                          for c in rerun_calls(sandbox)) == [
                "pl_healthy/createRun", "pl_poison/createRun"]
    finally:
        db.close()
