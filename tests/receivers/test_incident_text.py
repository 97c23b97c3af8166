"""The words the dashboard puts on an incident (receivers/incident_view.py and
receivers/timeline.py), for every action state and audit kind, including those the seeded
pages do not reach (a failed, skipped or running action; a failed verification)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from engine.audit import AuditRecord
from engine.store.actions import ActionRow
from engine.store.incidents import Incident
from receivers.incident_view import action_view, failure, headline, one_line, pending
from receivers.run_links import RunLink
from receivers.timeline import describe_match, sentence, steps
from tests.engine.actions.conftest import ADF_RUN, FACTORY, RG, adf_event

RERUN = (f"would rerun pipeline pl_x in factory {FACTORY} from the failed activity "
         "(recovery of run 7b1e4c52...)")
WHAT = f"rerun pipeline pl_x in factory {FACTORY} from the failed activity (recovery of run " \
       "7b1e4c52...)"
NEW_RUN = "228ba806-46dd-4798-8f19-6896afb136c9"
STARTED = {"outcome": "started", "detail": f"rerun {NEW_RUN} of pipeline pl_x started",
           "ref": {"cloud": "prod", "factory": FACTORY, "resource_group": RG,
                   "run_id": NEW_RUN}, "data": {}}


def row(**over: Any) -> ActionRow:
    fields: dict[str, Any] = {
        "id": "act_1", "idem_key": "k", "incident_id": "inc_1", "event_id": "evt_1",
        "rule_id": "r", "reference": "p.yaml:r/actions[0]", "action": "adf.rerun_pipeline",
        "index": 0, "phase": "remediate", "attempt": 1, "target": "t", "fingerprint": "f",
        "state": "scheduled", "dry_run": False, "mutating": True, "due_ms": 0,
        "created_ms": 0, "started_ms": 0, "finished_ms": 0, "owner": "", "params": {},
        "description": RERUN, "playbook": "", "playbook_hash": "", "result": {},
        "external_id": "", "error": "", "retries": 0, "probe_state": "", "probe_due_ms": 0,
        "probe_deadline_ms": 0, "probe_interval_s": 0.0}
    fields.update(over)
    return ActionRow(**fields)


def incident(**over: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": "inc_1", "fingerprint": "f", "target": "t", "source": "adf",
        "resource": "pl_x", "alert_key": "", "state": "remediating", "reason": "",
        "rule_id": "r", "event_id": "evt_1", "events": 1, "attempts": 1, "opened_ms": 1,
        "updated_ms": 1, "closed_ms": 0, "approval_due_ms": 0, "event": ""}
    fields.update(over)
    return Incident(**fields)


@pytest.mark.parametrize(("over", "words"), [
    ({"state": "dry_run", "dry_run": True, "result": {"precheck": "would act: run failed"}},
     (f"Would {WHAT} (dry-run: not done)", "would act: run failed", "dry-run, not done",
      "muted")),
    ({"state": "waiting_approval"},
     (f"Will {WHAT} once approved", "", "awaiting approval", "wait")),
    ({"state": "scheduled", "retries": 1, "error": "HTTP 503 from the factory"},
     (f"Will {WHAT}", "retry 1 after: HTTP 503 from the factory", "scheduled", "wait")),
    ({"state": "started"}, (f"Running: {WHAT}", "", "running", "wait")),
    ({"state": "succeeded", "result": STARTED, "probe_state": "running"},
     (f"Reran pipeline pl_x in factory {FACTORY} from the failed activity (recovery of run "
      "7b1e4c52...)", f"rerun {NEW_RUN} of pipeline pl_x started; verifying",
      "started, verifying", "wait")),
    ({"state": "succeeded", "result": STARTED, "probe_state": "succeeded"},
     (f"Reran {WHAT[6:]}", f"rerun {NEW_RUN} of pipeline pl_x started; verified", "verified",
      "ok")),
    ({"state": "succeeded", "result": STARTED, "probe_state": "failed",
      "error": f"run {NEW_RUN} failed: UserErrorSourceBlobNotExist"},
     (f"Reran {WHAT[6:]}", f"rerun {NEW_RUN} of pipeline pl_x started; verification failed: "
      f"run {NEW_RUN} failed: UserErrorSourceBlobNotExist", "verification failed", "bad")),
    ({"state": "failed", "error": "factory answered 403: AuthorizationFailed"},
     (f"Tried to {WHAT}: failed", "factory answered 403: AuthorizationFailed",
      "failed: factory answered 403: AuthorizationFailed", "bad")),
    ({"state": "skipped", "result": {"detail": "run 7b1e4c52 already succeeded"}},
     (f"Did not {WHAT}: not needed", "run 7b1e4c52 already succeeded", "not needed",
      "muted")),
    ({"state": "cancelled"}, (f"Cancelled before it ran: {WHAT}", "", "cancelled", "muted")),
    ({"state": "succeeded", "description": "would do nothing (task t failed)",
      "result": {"detail": "nothing done"}},
     ("Did nothing (task t failed)", "nothing done", "done", "ok")),
    ({"state": "succeeded", "description": "would frobnicate the widget"},
     ("Did: frobnicate the widget", "", "done", "ok")),
])
def test_an_action_is_worded_by_what_happened_to_it(over: dict[str, Any],
                                                    words: tuple[str, ...]) -> None:
    view = action_view(row(**over), adf_event())
    assert (view.sentence, view.outcome, view.status, view.tone) == words
    assert "would" not in view.sentence.lower() or view.row.state == "dry_run"


def test_a_succeeded_action_links_the_run_it_started() -> None:
    view = action_view(row(state="succeeded", result=STARTED), adf_event())
    assert view.link is not None and view.link.label == "ADF run 228ba806…"
    assert f"/pipelineruns/{NEW_RUN}?factory=" in view.link.url
    assert action_view(row(state="succeeded", result={"ref": "not a dict"}),
                       adf_event()).link is None


def test_what_failed_names_the_incident() -> None:
    event = adf_event(error_code="UserErrorSourceBlobNotExist",
                      error_codes=("2200", "UserErrorSourceBlobNotExist"),
                      message="\n  Failure happened on 'Source' side.\n  ErrorCode=X")
    found = failure(incident(resource="pl_copy_sales"), event)
    assert (found.title, found.code, found.message, found.run_id, found.activity) == (
        "pl_ingest_sales_daily · UserErrorSourceBlobNotExist", "UserErrorSourceBlobNotExist",
        "Failure happened on 'Source' side.", ADF_RUN, "Copy_RawSales_To_Bronze")
    # the most specific code known: the last of the codes, else the failure type
    assert failure(incident(), adf_event(error_code="", error_codes=("2200", "2108"))).code \
        == "2108"
    assert failure(incident(), adf_event(error_code="", error_codes=(),
                                         failure_type="UserError")).title \
        == "pl_ingest_sales_daily · UserError"
    # the event no longer stored: the incident's own resource
    assert failure(incident(resource="pl_gone"), None).title == "pl_gone"
    assert one_line("x" * 500) == "x" * 239 + "…"


ADF_MESSAGE = ("Failure happened on 'Source' side. ErrorCode=UserErrorSourceBlobNotExist,"
               "'Type=Microsoft.DataTransfer.Common.Shared.HybridDeliveryException,Message=The "
               "required Blob is missing. ContainerName: https://stcontosoraw.blob.core.windows"
               ".net/raw, path: sales/2025/03/14/sales_20250314.csv.,Source=Microsoft."
               "DataTransfer.ClientLibrary,'")


def test_the_message_says_what_went_wrong_first() -> None:
    said = ("The required Blob is missing. ContainerName: https://stcontosoraw.blob.core."
            "windows.net/raw, path: sales/2025/03/14/sales_20250314.csv.")
    assert headline(ADF_MESSAGE) == said
    # a pipeline's message names the activity first, nested as deep as it failed
    assert headline(f"Operation on target ForEach1 failed: Operation on target Copy1 failed: "
                    f"{ADF_MESSAGE}") == said
    assert headline("Operation on target Copy1 failed: Timeout") == "Timeout"
    # anything else: its first line
    assert headline("Job aborted.\nStack trace: ...") == "Job aborted."
    assert headline("no,Message=here") == "no,Message=here"
    assert failure(incident(), adf_event(message=ADF_MESSAGE)).message == said


def test_what_is_pending_and_until_when() -> None:
    waiting = incident(state="waiting_approval", approval_due_ms=5_000)
    due = row(state="scheduled", due_ms=9_000, retries=2)
    running = row(state="succeeded", result=STARTED, probe_state="running",
                  probe_deadline_ms=7_000)
    found = pending(waiting, [due, running, row(state="started", started_ms=3_000)],
                    adf_event())
    assert [(p.what, p.until_ms, p.label) for p in found] == [
        ("approval", 5_000, "deadline"),
        (f"will {WHAT[:59]}… (retry 2)", 9_000, "due"),  # the sentence is in the actions
        ("verifying", 7_000, "deadline"),
        (f"running: {WHAT[:59]}…", 3_000, "since"),
    ]
    assert found[2].link == RunLink(
        "ADF run 228ba806…", found[2].link.url if found[2].link else "")
    # without a run to name, what is verified is said in words
    assert pending(incident(), [row(state="succeeded", probe_state="running")])[0].what == \
        f"verifying: reran {WHAT[6:]}"
    assert pending(incident(state="resolved"), [due]) == []


def record(seq: int, kind: str, data: Any, actor: str = "engine") -> AuditRecord:
    return AuditRecord(seq=seq, ts="2025-03-14T02:21:04.663Z", incident_id="inc_1",
                       event_id="evt_1", kind=kind, actor=actor, data=data, prev_hash="",
                       hash="")


def test_a_match_is_said_in_words() -> None:
    assert describe_match({"source": "adf", "error_code": ["A", "B"],
                           "message": {"regex": "Container: (?P<c>\\S+)"},
                           "attributes.retries": {"gte": 2, "not": {"exists": True}},
                           "any": [{"resource": {"glob": "pl_*"}},
                                   {"not": {"kind": "job_run"}}]}) == (
        "source = adf, error_code in (A, B), message ~ /Container: (?P<c>\\S+)/, "
        "attributes.retries ≥ 2, not (attributes.retries exists), "
        "any of (resource like pl_*; not (kind = job_run))")
    assert len(describe_match({f"k{i}": "v" * 60 for i in range(12)})) == 300


def test_the_rules_a_match_did_not_try_are_counted_not_listed() -> None:
    tried = [{"rule": "first", "where": "/pb/adf.yaml:15", "matched": True, "reason": None,
              "groups": {"c": "raw"}}]
    tried += [{"rule": f"other-{i}", "where": "x", "matched": False,
               "reason": "not tried: rule `first` matched first (without `continue`)",
               "groups": {}} for i in range(40)]
    tried += [{"rule": "off", "where": "x", "matched": False, "reason": "disabled"}]
    [step] = steps([record(1, "matched", {"rules": ["first"], "tried": tried})],
                   because={"first": "source = adf"})
    assert step.text == "Matched rule first (adf.yaml:15) because source = adf"
    assert step.details == ["captured: c=raw",
                            "Other rules: 40 not tried (the first match wins), 1 disabled."]
    missed = [{"rule": f"r{i}", "matched": False, "reason": f"error_code: got X, not {i}"}
              for i in range(5)]
    [step] = steps([record(2, "no_match", {"tried": missed})])
    assert step.text == "No rule matched (5 tried): a person looks at it"
    assert step.details == ["r0: error_code: got X, not 0", "r1: error_code: got X, not 1",
                            "r2: error_code: got X, not 2",
                            "and 2 more rules that did not match"]


def test_guard_decisions_make_one_step() -> None:
    decisions = [("circuit", "allow", "closed"), ("budget", "allow", "1 of 3 attempts used"),
                 ("approval", "wait", "rule r requires approval"), ("pause", "allow", "no")]
    records = [record(i, "guard", {"name": n, "decision": d, "reason": r})
               for i, (n, d, r) in enumerate(decisions)]
    records.append(record(9, "action_planned", {"description": RERUN, "state":
                                                "waiting_approval", "dry_run": False}))
    guard, planned = steps(records)
    assert guard.text == "Guards passed: circuit, budget, pause; decided: approval → wait"
    assert guard.details == ["budget: 1 of 3 attempts used",
                             "approval: rule r requires approval"]
    assert [r.seq for r in guard.records] == [0, 1, 2, 3]
    assert (planned.text, planned.details, planned.state) == (
        f"Planned: {WHAT}", ["waits for an approval"], "waiting_approval")


@pytest.mark.parametrize(("kind", "data", "text", "state"), [
    ("received", {"source": "adf", "kind": "activity_run", "status": "firing",
                  "error_code": "2200", "run_id": ADF_RUN, "claim": 2},
     "Alert received: adf activity run, firing", ""),
    ("enriched", {"error_code": "UserErrorSourceBlobNotExist", "events": 1,
                  "message": "The required Blob is missing.", "notes": []},
     "Enriched from the cloud: error UserErrorSourceBlobNotExist", ""),
    ("approval", {"decision": "approved", "who": "ops (dashboard)"},
     "Approved by ops (dashboard)", "remediating"),
    ("approval", {"decision": "rejected", "who": "ops", "reason": "maintenance"},
     "Rejected by ops: maintenance", "ignored"),
    ("approval", {"decision": "expired"}, "Approval expired: nobody decided in time",
     "escalated"),
    ("precheck", {"decision": "skip", "reason": "run already rerun", "dry_run": True},
     "Pre-check (dry-run): not needed any more: run already rerun", ""),
    ("action_failed", {"action": "adf.rerun_pipeline", "error": "HTTP 503", "retry": 1,
                       "retry_limit": 3}, "adf.rerun_pipeline failed: HTTP 503", ""),
    ("verification", {"state": "failed", "reason": "run X failed"},
     "Verification failed: run X failed", ""),
    ("verification", {"state": "running", "attempt": 1},
     "Verifying: the probe follows what the actions started", "verifying"),
    ("rca", {"analysis": {"summary": "The source file did not land.", "engine": "llm"}},
     "Root-cause analysis: The source file did not land.", ""),
    ("resolution", {"state": "resolved", "reason": "verified"}, "Resolved: verified",
     "resolved"),
    ("escalation", {"reason": "budget spent"}, "Escalated: budget spent", "escalated"),
    ("notification", {"state": "escalated", "outcome": "sent"},
     "Announced the state escalated to the channels", ""),
    ("repeat", {"events": 3}, "A repeat of a failure already escalated (3 events): recorded, "
                              "not analysed again", ""),
    ("something_new", {"a": 1, "b": [1, "x"]}, "Something new: a: 1, b: [1,\"x\"]", ""),
    ("received", {"source": ["not", "text"], "claim": "x"},
     'Alert received: ["not","text"]', ""),
    ("matched", {"rules": "x", "tried": "x"}, "Matched rule ?", ""),
])
def test_each_kind_reads_as_a_sentence(kind: str, data: Any, text: str, state: str) -> None:
    [step] = steps([record(1, kind, data)])
    assert (step.text, step.state) == (text, state)
    assert sentence(record(1, kind, data)) == text


def test_a_step_keeps_its_records_as_stored() -> None:
    hostile = {"reason": "<script>alert('x')</script>", "state": "resolved"}
    [step] = steps([record(1, "resolution", hostile)])
    assert step.records[0].data == hostile  # escaped by the template, not here
    assert msgspec.json.encode(step.records[0].data).decode().count("\\u") == 0
