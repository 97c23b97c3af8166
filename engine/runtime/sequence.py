"""A playbook test's ``sequence:``: several events over time through the engine itself.

The steps run through the real pipeline, guards, planner, runner and scheduler, on a fresh
SQLite file in a temporary directory and a :class:`~engine.clock.FakeClock`, in live mode, so
that budgets, cooldowns, breakers, delays, approval and silences decide as they would in
service. Nothing leaves the process: every action is simulated, as the step's ``outcome``
says: ``succeeded`` (the call is accepted; an action that starts a run has it verified as
succeeded), ``failed`` (the call is accepted and the run it started fails again: the
verification fails and the next attempt is planned if the guards allow it), ``error`` (the
call fails for good: the incident escalates at once). No pre-check reads a target, and no
alert is too old (``max_alert_age_s`` is off: test payloads carry old times).

``after:`` moves the clock: to each due time in between (delayed actions, next attempts,
verification polls), where the scheduler ticks, then to the end, where it ticks again. The
outcome that applies is that of the step during which the action runs or is verified. Each
step's expectations are checked against the audit records it wrote.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from engine import guards, silences
from engine.actions.base import ActionSpec, Params
from engine.actions.context import ActionContext, ActionResult, ProbeResult
from engine.actions.registry import action_table
from engine.audit import AuditRecord
from engine.clock import FakeClock, to_ms
from engine.config import EngineSettings
from engine.deps import Deps
from engine.errors import PermanentActionError, RemediatorError
from engine.events import ErrorEvent
from engine.rules.durations import format_duration, parse_duration
from engine.rules.model import Step, StepExpect
from engine.rules.ruleset import LoadedStep, LoadedTest, PlaybookSet
from engine.rules.silences import parse_matcher
from engine.rules.testing import CaseResult, Parse, diff, pick, same_json
from engine.runtime import pipeline
from engine.runtime.scheduler import Scheduler
from engine.store import actions as actions_store
from engine.store import audit as audit_store
from engine.store import inbox
from engine.store import incidents as incidents_store
from engine.store.db import Database

__all__ = ["START", "run_sequence"]

START = datetime.fromisoformat("2025-03-14T09:00:00+00:00")
"""The simulated clock's time at the first step."""
_MAX_TICKS = 1000
"""Due times a step's ``after`` stops at, at most (then it jumps to its end)."""


@dataclasses.dataclass
class _Fixed:
    """The playbook set under test, in force for the whole sequence."""

    current: PlaybookSet


@dataclasses.dataclass
class _Outcome:
    """How the simulated actions of the current step end."""

    value: str = "succeeded"


def _simulated(actions: Mapping[str, ActionSpec], outcome: _Outcome) -> dict[str, ActionSpec]:
    """The registry's actions with their calls simulated: rendered and checked as in service,
    never sent; an action that starts something keeps a (simulated) verification."""

    def run(params: Params, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
        if outcome.value == "error":
            raise PermanentActionError("simulated error (the step's outcome: error)")
        return ActionResult(outcome="done", detail="simulated: nothing was called")

    def run_started(params: Params, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
        run(params, event, ctx)
        return ActionResult(outcome="started", detail="simulated: nothing was called",
                            ref={"simulated": "run"})

    def probe(result: ActionResult, ctx: ActionContext) -> ProbeResult:
        state = "failed" if outcome.value == "failed" else "succeeded"
        return ProbeResult(state=state, detail=f"simulated: the run {state}")

    return {name: dataclasses.replace(
                spec, run=run if spec.probe is None else run_started, precheck=None,
                probe=None if spec.probe is None else probe, reconcile=None)
            for name, spec in actions.items()}


def _ticks(deps: Deps, clock: FakeClock, scheduler: Scheduler, seconds: int) -> None:
    """Move the clock ``seconds`` on, ticking at each due time in between and at the end."""
    end = clock.now() + timedelta(seconds=seconds)
    for _ in range(_MAX_TICKS):
        times = [r.due_ms for r in actions_store.due(deps.db, to_ms(end), limit=1)]
        times += [r.probe_due_ms for r in actions_store.probes_due(deps.db, to_ms(end), limit=1)]
        if not times:
            break
        moment = max(clock.now(), datetime.fromtimestamp(min(times) / 1000, end.tzinfo))
        clock.set(moment)
        scheduler.tick(moment)
    clock.set(end)
    scheduler.tick(end)


def _records(db: Database, after_seq: int) -> list[AuditRecord]:
    return [r for r in audit_store.list_records(db, limit=5000) if r.seq > after_seq]


def _last_seq(db: Database) -> int:
    found = audit_store.head(db)
    return found[0] if found else 0


def _event_of(step: LoadedStep, test: LoadedTest, parse: Parse, last: ErrorEvent | None,
              n: int) -> tuple[ErrorEvent | None, str | None]:
    """The event a step delivers (None for an ``approve`` or a wait), or why there is none."""
    spec = step.step
    if spec.event is not None or spec.payload is not None:
        event, problem = pick(test, parse, spec, step.event)
        if event is not None:
            event = msgspec.structs.replace(event, dedup_key=f"{event.dedup_key}#step{n}")
        return event, problem
    if (spec.repeat or spec.resolve) and last is not None:
        status = "resolved" if spec.resolve else "firing"
        return msgspec.structs.replace(last, status=status,
                                       dedup_key=f"{last.dedup_key}#step{n}"), None
    return None, None


def _observe(db: Database, records: list[AuditRecord], incident_id: str) -> dict[str, Any]:
    """What a step did, from the records it wrote."""
    got: dict[str, Any] = {"rule": msgspec.UNSET, "actions": [], "params": {}, "ran": [],
                           "delays": {}, "blocked": None, "approval": "none",
                           "silenced": False}
    for record in records:
        data = record.data
        if record.kind == "matched":
            got["rule"] = data["rules"][0]
        elif record.kind == "no_match":
            got["rule"] = None
        elif record.kind == "guard":
            if data["decision"] in ("escalate", "ignore"):
                got["blocked"] = data["name"]
                got["silenced"] = got["silenced"] or data["name"] == "silence"
            elif data["decision"] == "wait":
                got["approval"] = "required"
        elif record.kind == "action_planned" and data.get("phase") == "remediate":
            got["actions"].append(data["action"])
            got["params"].setdefault(data["action"], data.get("params") or {})
            planned_ms = to_ms(datetime.fromisoformat(record.ts.replace("Z", "+00:00")))
            got["delays"].setdefault(data["action"], max(0, data["due"] - planned_ms) // 1000)
        elif record.kind in ("action_succeeded", "action_failed"):
            got["ran"].append(data["action"])
    incident = incidents_store.get(db, incident_id) if incident_id else None
    got["state"] = incident.state if incident is not None else None
    return got


def _check(expect: StepExpect, got: dict[str, Any]) -> list[str]:
    """The step's expectations that did not hold, as expected/got blocks."""
    failures = []
    if expect.rule is not msgspec.UNSET and expect.rule != got["rule"]:
        shown = "(no rule tried in this step)" if got["rule"] is msgspec.UNSET else got["rule"]
        failures.append(diff("rule", expect.rule, shown))
    if expect.blocked is not msgspec.UNSET and expect.blocked != got["blocked"]:
        failures.append(diff("blocked", expect.blocked, got["blocked"]))
    for key in ("actions", "ran", "state", "approval", "silenced"):
        want = getattr(expect, key)
        if want is not None and want != got[key]:
            failures.append(diff(key, want, got[key]))
    for action, delay in (expect.delays or {}).items():
        seconds = got["delays"].get(action)
        if seconds != parse_duration(delay):
            failures.append(diff(f"delays.{action}", delay,
                                 None if seconds is None else format_duration(seconds)))
    for action, subset in (expect.params or {}).items():
        params = got["params"].get(action)
        for key, want in subset.items():
            have = None if params is None else params.get(key)
            if not same_json(msgspec.to_builtins(want), have):
                failures.append(diff(f"params.{action}.{key}", want, have))
    return failures


def _label(n: int, step: Step) -> str:
    what = [f"after {step.after}"] if step.after else []
    for key in ("event", "payload", "repeat", "resolve"):
        if getattr(step, key) not in (None, False):
            what.append(key)
    if step.approve:
        what.append(f"approve by {step.approve}")
    return f"step {n}" + (f" ({', '.join(what)})" if what else "")


def run_sequence(playbooks: PlaybookSet, test: LoadedTest, parse: Parse) -> CaseResult:
    """Run a ``sequence:`` case through the engine (see the module's docstring); every step
    is run and checked, the failures of each prefixed by its number and line."""
    with tempfile.TemporaryDirectory(prefix="remediator-test-") as tmp:
        db = Database(Path(tmp) / "sequence.db")
        try:
            return _run(db, playbooks, test, parse)
        finally:
            db.close()


def _run(db: Database, playbooks: PlaybookSet, test: LoadedTest, parse: Parse) -> CaseResult:
    clock, outcome = FakeClock(START), _Outcome()
    deps = Deps(db=db, playbooks=_Fixed(playbooks), actions=_simulated(action_table(), outcome),
                ctx=ActionContext(clients=None),  # type: ignore[arg-type]  # never called
                live=True, clock=clock,
                options=msgspec.structs.replace(EngineSettings(), max_alert_age_s=0))
    scheduler = Scheduler(deps)
    for silence in test.case.silences:
        seconds = parse_duration(silence.duration) if silence.duration else 366 * 86400
        silences.create(db, [parse_matcher(m) for m in silence.matchers], author="test",
                        comment=silence.comment or test.case.name, now=START,
                        ends=START + timedelta(seconds=min(seconds, silences.MAX_DURATION_S)))
    failures: list[str] = []
    last: ErrorEvent | None = None
    incident_id = ""
    for n, step in enumerate(test.steps, 1):
        label = f"{_label(n, step.step)} at line {step.line}"
        outcome.value = step.step.outcome
        start = _last_seq(db)
        if step.after_s:
            _ticks(deps, clock, scheduler, step.after_s)
        event, problem = _event_of(step, test, parse, last, n)
        if problem:
            failures.append(f"{label}: {problem}")
            continue
        try:
            if event is not None:
                if event.status == "firing":
                    last = event
                [receipt] = inbox.insert(db, [event.with_fingerprint()], {}, "/test")
                stored = inbox.get(db, receipt.event_id)
                assert stored is not None
                pipeline.process(deps, stored)
            elif step.step.approve:
                waiting = incidents_store.get(db, incident_id) if incident_id else None
                if waiting is None:
                    raise guards.GuardError("no incident to approve")
                guards.approve(db, waiting.id, step.step.approve, now=clock.now())
                scheduler.tick(clock.now())
        except (RemediatorError, guards.GuardError) as exc:
            failures.append(f"{label}: {exc}")
            continue
        except Exception as exc:  # a bug: this case fails saying so, the others still run
            failures.append(f"{label}: the engine failed: {type(exc).__name__}: {exc}")
            continue
        records = _records(db, start)
        incident_id = next((r.incident_id for r in reversed(records) if r.incident_id),
                           incident_id)
        if step.step.expect is not None:
            got = _observe(db, records, incident_id)
            failures += [f"{label}: {line}" for f in _check(step.step.expect, got)
                         for line in [f.replace("\n", "\n    ")]]
    return CaseResult(test, last, failures)
