"""Policies across rules: approval required by a playbook policy (whatever rule matched, and
by a rule matched through ``continue``), and silences that hold remediation until they end."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import guards, silences
from engine.rules.silences import MatcherSpec, parse_matcher
from engine.runtime.worker import Worker
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from tests.engine.actions.conftest import PIPELINE, adf_event
from tests.engine.test_guards import newest
from tests.engine.test_worker import RERUN, reruns
from tests.fixtures.engine import EngineRig

POLICY = RERUN.replace("rules:", f"""\
policies:
  - id: finance-needs-approval
    match: {{resource: {{glob: "{PIPELINE[:6]}*"}}}}
rules:""")
CONTINUED = RERUN.replace("rules:\n", """\
rules:
  - id: tell-first
    match: {source: adf}
    continue: true
    actions:
      - action: noop
        with: {note: told}
""").replace("    verify:", "    approval: required\n    verify:")


def guards_of(rig: EngineRig, name: str) -> list[dict[str, object]]:
    """The guard's decisions as recorded (without the ids the log adds)."""
    return [{k: v for k, v in r.data.items() if k != "resource"}
            for r in audit_store.list_records(rig.db, kind="guard", limit=1000)
            if r.data["name"] == name]


def drained(rig: EngineRig, playbook: str) -> Worker:
    """A live worker over ``playbook`` that has taken in one ADF failure."""
    worker = rig.worker(playbook, live=True)
    rig.deliver(adf_event())
    worker.drain()
    return worker


def test_a_policy_requires_approval_whatever_rule_matched(engine_rig: EngineRig) -> None:
    worker = drained(engine_rig, POLICY)
    assert newest(engine_rig).state == "waiting_approval"
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []
    [decision] = guards_of(engine_rig, "approval")
    where = f"{engine_rig.tmp}/playbooks/engine.yaml:3"
    assert decision == {"name": "approval", "decision": "wait",
                        "policies": ["finance-needs-approval"],
                        "reason": f"policy finance-needs-approval ({where}) requires approval"}


def test_a_policy_that_does_not_hold_asks_nothing(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(POLICY, live=True)
    engine_rig.deliver(adf_event(resource="other_pipeline",
                                 attributes={**adf_event().attributes,
                                             "pipeline": "other_pipeline"}))
    worker.drain()
    assert newest(engine_rig).state != "waiting_approval"
    [decision] = guards_of(engine_rig, "approval")
    assert decision["reason"] == "no approval required"


def test_a_rule_matched_through_continue_that_requires_approval_waits(
        engine_rig: EngineRig) -> None:
    worker = drained(engine_rig, CONTINUED)
    incident = newest(engine_rig)
    assert (incident.rule_id, incident.state) == ("tell-first", "waiting_approval")
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []
    assert [d["reason"] for d in guards_of(engine_rig, "approval")] == [
        "no approval required",
        "rule adf-copy-failed (matched through continue) requires approval"]


def test_a_silence_holds_remediation_until_it_ends(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    now = engine_rig.clock.now()
    made = silences.create(engine_rig.db, [parse_matcher(f"resource=~{PIPELINE[:6]}.*")],
                           author="alice", comment="factory upgrade", now=now,
                           ends=now + timedelta(hours=1))
    engine_rig.deliver(adf_event())
    worker.drain()
    worker.scheduler.tick()
    incident = newest(engine_rig)
    until = (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    reason = (f"silenced by {made['id']} until {until} (alice: factory upgrade): recorded, "
              "not remediated")
    assert (incident.state, incident.reason) == ("ignored", reason)
    assert reruns(engine_rig.sandbox) == []
    assert guards_of(engine_rig, "silence") == [
        {"name": "silence", "decision": "ignore", "silence": made["id"], "reason": reason}]
    [created] = audit_store.list_records(engine_rig.db, kind="silence")
    assert (created.actor, created.data["decision"]) == ("alice", "created")

    engine_rig.clock.advance(hours=1)  # it ends by itself: the next failure is remediated
    engine_rig.deliver(adf_event(dedup_key="second", run_id="second-run"))
    worker.drain()
    worker.scheduler.tick()
    assert newest(engine_rig).state != "ignored"
    assert len(guards_of(engine_rig, "silence")) == 1  # "none matches" is not recorded


DELAYED = RERUN.replace("with: {start_from_failure: true}",
                        "with: {start_from_failure: true}\n        delay: 2m")


def _silence(rig: EngineRig, matcher: str, comment: str = "factory upgrade") -> str:
    now = rig.clock.now()
    made = silences.create(rig.db, [parse_matcher(matcher)], author="alice", comment=comment,
                           now=now, ends=now + timedelta(hours=1))
    return str(made["id"])


def _held_reason(rig: EngineRig, silence_id: str, comment: str = "factory upgrade") -> str:
    until = (rig.clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    return (f"engine.yaml:adf-copy-failed/actions[0] came due while silenced by {silence_id} "
            f"until {until} (alice: {comment}): recorded, not remediated")


def test_a_silence_begun_after_planning_holds_the_delayed_action_when_it_comes_due(
        engine_rig: EngineRig) -> None:
    """A rerun planned with a 2-minute delay, then a silence: when the rerun comes due it is
    held as the silence guard holds a planning (incident ignored naming the silence, the row
    cancelled, both audited), and nothing reaches the cloud, not even after the silence."""
    worker = drained(engine_rig, DELAYED)
    incident = newest(engine_rig)
    assert incident.state == "remediating"
    _silence(engine_rig, "resource=other_pipeline", "another factory")  # holds nothing here
    silence_id = _silence(engine_rig, f"resource=~{PIPELINE[:6]}.*")
    reason = _held_reason(engine_rig, silence_id)
    engine_rig.clock.advance(minutes=2)
    worker.scheduler.tick()
    assert reruns(engine_rig.sandbox) == []
    incident = newest(engine_rig)
    assert (incident.state, incident.reason) == ("ignored", reason)
    [row] = actions_store.for_incident(engine_rig.db, incident.id)
    assert (row.action, row.state) == ("adf.rerun_pipeline", "cancelled")
    assert guards_of(engine_rig, "silence") == [
        {"name": "silence", "decision": "ignore", "silence": silence_id, "reason": reason}]
    records = audit_store.list_records(engine_rig.db, incident_id=incident.id, limit=100)
    assert [(r.kind, r.data.get("name") or r.data.get("state") or r.data.get("reason"))
            for r in records][-3:] == [
        ("guard", "silence"), ("action_cancelled", reason), ("resolution", "ignored")]
    assert audit_store.verify_chain(engine_rig.db).ok
    engine_rig.clock.advance(hours=2)  # the silence ended: the cancelled rerun stays undone
    assert worker.scheduler.tick().ran == 0
    assert reruns(engine_rig.sandbox) == []


def test_a_delayed_action_runs_when_no_silence_in_force_matches_it(
        engine_rig: EngineRig) -> None:
    worker = drained(engine_rig, DELAYED)
    _silence(engine_rig, "resource=other_pipeline", "another factory")
    engine_rig.clock.advance(minutes=2)
    assert worker.scheduler.tick().ran == 1
    assert len(reruns(engine_rig.sandbox)) == 1
    assert newest(engine_rig).state == "verifying"
    assert guards_of(engine_rig, "silence") == []


def test_a_silence_holds_the_next_attempt(engine_rig: EngineRig) -> None:
    """The rerun ran, its run failed; the next attempt is planned while a silence is in
    force (the retry guards are the circuit and the budget): it is held when it comes due."""
    engine_rig.sandbox.script("adf", "adf.createRun", fail_rerun=True, times=5)
    worker = drained(engine_rig, RERUN)
    assert len(reruns(engine_rig.sandbox)) == 1
    silence_id = _silence(engine_rig, "source=adf")
    reason = _held_reason(engine_rig, silence_id)
    for _ in range(2):  # the emulator answers InProgress, then Failed
        engine_rig.clock.advance(60)
        worker.scheduler.tick()
    incident = newest(engine_rig)
    assert (incident.state, incident.attempts, incident.reason) == ("ignored", 2, reason)
    assert len(reruns(engine_rig.sandbox)) == 1
    rows = actions_store.for_incident(engine_rig.db, incident.id)
    assert [(r.attempt, r.state) for r in rows] == [(1, "succeeded"), (2, "cancelled")]


def test_a_silence_holds_an_action_approved_while_it_is_in_force(
        engine_rig: EngineRig) -> None:
    worker = drained(engine_rig, POLICY)
    incident = newest(engine_rig)
    assert incident.state == "waiting_approval"
    silence_id = _silence(engine_rig, "source=adf")
    guards.approve(engine_rig.db, incident.id, "bob", now=engine_rig.clock.now())
    worker.scheduler.tick()
    assert reruns(engine_rig.sandbox) == []
    incident = newest(engine_rig)
    assert (incident.state, incident.reason) == ("ignored", _held_reason(engine_rig,
                                                                          silence_id))


def test_expired_early_a_silence_holds_nothing(engine_rig: EngineRig) -> None:
    worker = engine_rig.worker(RERUN, live=True)
    now = engine_rig.clock.now()
    made = silences.create(engine_rig.db, [MatcherSpec(name="source", value="adf")],
                           author="alice", comment="upgrade", now=now,
                           ends=now + timedelta(hours=1))
    done = silences.expire(engine_rig.db, made["id"], "bob", now=now)
    assert (done["state"], done["expired_by"]) == ("expired", "bob")
    engine_rig.deliver(adf_event())
    worker.drain()
    assert newest(engine_rig).state != "ignored"
    with pytest.raises(silences.SilenceError, match=f"silence {made['id']} already ended"):
        silences.expire(engine_rig.db, made["id"], "bob", now=now)


@pytest.mark.parametrize(("matchers", "message"), [
    ([], "a silence needs at least one matcher"),
    (["resource=~.*"], "every matcher holds for an empty value: the silence would hold every "
                       "event; name at least one field's value"),
    (["colour=red"], "matcher 'colour': unknown field; expected one of source, kind, target, "
                     "resource, resource_id, error_code, failure_type, run_id or "
                     "attributes.<path>"),
    (["resource=~(?=x)"], "matcher resource=~: "),
    ([f"resource={'x' * 1001}"], "matcher resource=: the value is longer than 1000 characters"),
    ([f"source=adf{i}" for i in range(17)], "a silence has at most 16 matchers, got 17"),
])
def test_bad_silences_are_refused_with_the_reason(engine_rig: EngineRig, matchers: list[str],
                                                  message: str) -> None:
    now = engine_rig.clock.now()
    with pytest.raises(silences.SilenceError) as raised:
        silences.create(engine_rig.db, [parse_matcher(m) for m in matchers], author="a",
                        comment="c", now=now, ends=now + timedelta(hours=1))
    assert str(raised.value).startswith(message)
    assert audit_store.list_records(engine_rig.db, kind="silence") == []

