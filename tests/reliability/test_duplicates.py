"""Every sample delivered five times at once: one event each, one remediation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from engine.config import EngineSettings
from engine.store import actions as actions_store
from engine.store import incidents as incidents_store
from receivers import intake
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.app import ENDPOINT_OF_SAMPLE, receiver_headers
from tests.fixtures.common import load_sample
from tests.fixtures.engine import EngineRig
from tests.reliability.conftest import LiveServer

COPIES = 5

EVERY_FIRING = """\
name: engine
rules:
  - id: any-firing
    match: {status: firing}
    actions:
      - action: noop
        with: {note: "remediate {{ event.resource }}"}
"""


def _deliver_all(server: LiveServer, http: httpx.Client) -> dict[str, list[dict[str, Any]]]:
    """Every sample COPIES times, all requests in flight together; answers by sample."""
    jobs = [(name, copy) for name in ENDPOINT_OF_SAMPLE for copy in range(COPIES)]

    def post(job: tuple[str, int]) -> tuple[str, httpx.Response]:
        name, _ = job
        endpoint = ENDPOINT_OF_SAMPLE[name]
        return name, http.post(f"{server.url}/{endpoint}", json=load_sample(name),
                               headers=receiver_headers(endpoint))

    by_sample: dict[str, list[dict[str, Any]]] = {name: [] for name in ENDPOINT_OF_SAMPLE}
    with ThreadPoolExecutor(len(jobs)) as pool:
        for name, response in pool.map(post, jobs):
            assert response.status_code == 202, (name, response.text)
            by_sample[name].append(response.json())
    return by_sample


def test_five_concurrent_copies_of_every_sample_store_one_event_each(
    live_server: LiveServer, http: httpx.Client, engine_rig: EngineRig
) -> None:
    by_sample = _deliver_all(live_server, http)
    expected_keys = set()
    for name, answers in by_sample.items():
        events = intake.normalize(ENDPOINT_OF_SAMPLE[name], load_sample(name))
        expected_keys |= {e.dedup_key for e in events}
        if not events:
            assert {a["status"] for a in answers} == {"ignored"}, name
            continue
        assert len({a["event_id"] for a in answers}) == 1, (name, answers)
        assert sorted(a["duplicate"] for a in answers) == [False] + [True] * (COPIES - 1), name

    rows = engine_rig.db.query("SELECT dedup_key, duplicates FROM events")
    assert sorted(r["dedup_key"] for r in rows) == sorted(expected_keys)
    # Each duplicate was counted: one stored event, COPIES - 1 duplicates (a key shared by
    # two samples counts both samples' copies).
    assert sum(r["duplicates"] for r in rows) == (
        sum(len(a) for a in by_sample.values() if a[0]["event_id"]) - len(rows)
    )

    # Two workers race over the same inbox: each event is processed once, one action each.
    # The samples fired on several days: no age bound, so that every one of them is handled.
    ageless = EngineSettings(max_alert_age_s=0)
    first = engine_rig.worker(EVERY_FIRING, live=True, options=ageless)
    second = engine_rig.worker(EVERY_FIRING, live=True, options=ageless)
    with ThreadPoolExecutor(2) as pool:
        while sum(pool.map(lambda w: w.drain(), (first, second))):
            pass
    firing = engine_rig.db.query("SELECT count(*) AS n FROM events WHERE status = 'firing'")
    incidents = incidents_store.list_incidents(engine_rig.db, limit=1000)
    planned = [row for inc in incidents
               for row in actions_store.for_incident(engine_rig.db, inc.id)]
    assert sum(inc.events for inc in incidents) == firing[0]["n"]
    # One action per incident, except where two samples name the same target and the other
    # incident held its lock (one remediation at a time per target).
    counts = [len(actions_store.for_incident(engine_rig.db, inc.id)) for inc in incidents]
    locked = [inc for inc in incidents if inc.reason.startswith(f"target {inc.target} is locked")]
    assert max(counts) == 1
    assert len(planned) + len(locked) == len(incidents)
    assert sorted({row.event_id for row in planned}) == sorted(row.event_id for row in planned)


def test_a_failure_delivered_five_times_at_once_is_rerun_once(
    live_server: LiveServer, http: httpx.Client, engine_rig: EngineRig
) -> None:
    name = "azure-monitor/azmon-common-logv2-adf-activityrun-blobmissing.json"
    payload = load_sample(name)
    with ThreadPoolExecutor(COPIES) as pool:
        answers = list(pool.map(
            lambda _: http.post(f"{live_server.url}/azure-monitor", json=payload,
                                headers=receiver_headers("azure-monitor")).json(),
            range(COPIES)))
    assert len({a["event_id"] for a in answers}) == 1
    workers = [engine_rig.worker(RERUN, live=True) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        assert sum(pool.map(lambda w: w.drain(), workers)) == 1
    assert len(reruns(engine_rig.sandbox)) == 1
    # Delivered again later (the sender retried): still one event, still one rerun.
    again = http.post(f"{live_server.url}/azure-monitor", json=payload,
                      headers=receiver_headers("azure-monitor")).json()
    assert (again["event_id"], again["duplicate"]) == (answers[0]["event_id"], True)
    assert workers[0].drain() == 0
    assert len(reruns(engine_rig.sandbox)) == 1
