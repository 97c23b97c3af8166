"""``remediator replay``: the stored events of a period through another playbook set.

Dry-run by construction: only the matcher and the renderer (engine.rules) run; nothing is
executed, written or sent. For each firing event it compares what the engine recorded (the
``matched``/``no_match``, approval ``guard`` and ``action_planned`` audit records) with what
the other playbooks would do, and reports the events that would get another rule, other
actions, another approval (a rule's or a policy's), another delay or other parameters (as
stored: redacted alike).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta

import click
import msgspec
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cli._db import db_option, shown
from engine.actions.registry import action_table
from engine.errors import PlaybookError, StorageError
from engine.events import utcnow
from engine.rules.durations import format_duration, parse_duration
from engine.rules.load import load_playbooks
from engine.rules.ruleset import PlaybookSet
from engine.rules.templates import PlannedAction, RenderError
from engine.rules.testing import same_json
from engine.store import inbox, reporting
from engine.store.db import Database
from engine.text.redact import redact

__all__ = ["Change", "ReplayReport", "replay", "replay_events", "run_replay"]


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One event whose outcome would change: the rules and actions before and after."""

    event_id: str
    source: str
    resource: str
    error_code: str
    rules_before: list[str]
    rules_after: list[str]
    actions_before: list[str]
    actions_after: list[str]
    approval_before: bool | None = None
    approval_after: bool | None = None
    differences: list[str] = msgspec.field(default_factory=list)
    error: str = ""


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    """Counts over the period and the events that would change."""

    events: int
    unchanged: int
    unprocessed: int
    changed: list[Change]


def _stored_events(db: Database, since_ms: int, page: int = 500) -> Iterator[inbox.StoredEvent]:
    before = None
    while True:
        rows = inbox.list_events(db, status="firing", limit=page, before=before)
        for row in rows:
            if row.received_at.timestamp() * 1000 < since_ms:
                return
            yield row
        if len(rows) < page:
            return
        before = rows[-1].event.id


def replay_events(db: Database, playbooks: PlaybookSet, *, since_ms: int,
                  progress: Progress | None = None) -> ReplayReport:
    """Compare the recorded outcome of every firing event received since ``since_ms`` with
    what ``playbooks`` would do (match and render only)."""
    events = list(_stored_events(db, since_ms))
    task = progress.add_task("replaying", total=len(events)) if progress else None
    changed, unchanged, unprocessed = [], 0, 0
    for stored in reversed(events):  # oldest first
        event = stored.current
        recorded = reporting.event_outcomes(db, event.id)
        if progress is not None and task is not None:
            progress.advance(task)
        if not recorded.processed:
            unprocessed += 1
            continue
        error, planned = "", []
        matches = playbooks.match(event)
        rules_after = [m.rule.id for m in matches]
        try:
            planned = playbooks.plan(event)[0][1] if matches else []
        except RenderError as exc:
            error = str(exc)
        actions_before = [a.action for a in recorded.actions]
        actions_after = [a.action for a in planned]
        approval_after = playbooks.approval(event, matches)[0] if matches else None
        differences = _differences(recorded, planned, approval_after)
        same_rule = recorded.rules == rules_after
        # Actions compare only where the engine planned some (a joined incident plans none).
        same_actions = not actions_before or actions_before == actions_after
        if same_rule and same_actions and not differences and not error:
            unchanged += 1
            continue
        changed.append(Change(
            event_id=event.id, source=event.source, resource=event.resource,
            error_code=event.error_code, rules_before=recorded.rules, rules_after=rules_after,
            actions_before=actions_before, actions_after=actions_after,
            approval_before=recorded.approval, approval_after=approval_after,
            differences=differences, error=error))
    return ReplayReport(events=len(events), unchanged=unchanged, unprocessed=unprocessed,
                        changed=changed)


def _differences(recorded: reporting.Recorded, planned: list[PlannedAction],
                 approval_after: bool | None) -> list[str]:
    """What else would change, in words: the approval (where an approval guard ran), and the
    delay and parameters of each action planned under the same name at the same place."""
    found = []
    if recorded.approval is not None and approval_after is not None \
            and recorded.approval != approval_after:
        found.append(f"approval: {_required(recorded.approval)} -> {_required(approval_after)}")
    for i, (before, after) in enumerate(zip(recorded.actions, planned, strict=False)):
        if before.action != after.action:
            continue
        if before.delay_s != after.delay_s:
            found.append(f"{after.action} [{i}] delay: {format_duration(before.delay_s)} -> "
                         f"{format_duration(after.delay_s)}")
        params = redact(msgspec.to_builtins(after.params))
        for key in sorted(set(before.params) | set(params)):
            if not same_json(before.params.get(key), params.get(key)):
                found.append(f"{after.action} [{i}] {key}: "
                             f"{json.dumps(before.params.get(key))} -> "
                             f"{json.dumps(params.get(key))}")
    return found


def _required(value: bool) -> str:
    return "required" if value else "none"


def _show(values: list[str]) -> str:
    return ", ".join(values) if values else "(none)"


def run_replay(since: str, playbooks_dir: str, db_path: str, as_json: bool) -> int:
    """0 when nothing would change, 1 when some events would (listed), 2 on bad input."""
    try:
        seconds = parse_duration(since)
    except ValueError as exc:
        click.echo(f"--since: {exc}", err=True)
        return 2
    try:
        playbooks = load_playbooks([playbooks_dir], action_table())
    except PlaybookError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        return 2
    since_ms = int((utcnow() - timedelta(seconds=seconds)).timestamp() * 1000)
    try:
        db = Database(db_path)
        if as_json:
            report = replay_events(db, playbooks, since_ms=since_ms)
        else:
            with Progress(console=Console(file=sys.stderr), transient=True) as progress:
                report = replay_events(db, playbooks, since_ms=since_ms, progress=progress)
        db.close()
    except StorageError as exc:
        click.echo(f"{shown(db_path)}: {exc}", err=True)
        return 2
    if as_json:
        click.echo(json.dumps(msgspec.to_builtins(report), indent=2))
    else:
        console = Console(file=sys.stdout, width=160)
        console.print(f"{report.events} events since {since}: {len(report.changed)} would "
                      f"change, {report.unchanged} unchanged, {report.unprocessed} not yet "
                      "processed")
        if report.changed:
            table = Table("event", "resource", "error code", "recorded rules",
                          "replayed rules", "recorded actions", "replayed actions")
            for c in report.changed:
                table.add_row(c.event_id, c.resource, c.error_code, _show(c.rules_before),
                              _show(c.rules_after), _show(c.actions_before),
                              c.error or _show(c.actions_after))
            console.print(table)
            for c in report.changed:  # approval, delays, parameters: one line each
                for difference in c.differences:
                    console.print(f"{c.event_id} {c.resource}: {difference}", markup=False,
                                  soft_wrap=True)
    return 1 if report.changed else 0


@click.command()
@click.option("--since", required=True, help="The period to replay (30m, 24h, 7d).")
@click.option("--playbooks", "playbooks_dir", default="playbooks", show_default=True,
              type=click.Path(exists=True), help="The other playbooks.")
@db_option(default="remediator.db", exists=True, help="The database.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def replay(ctx: click.Context, since: str, playbooks_dir: str, db_path: str,
           as_json: bool) -> None:
    """Replay stored events through other playbooks (dry-run): what would change."""
    ctx.exit(run_replay(since, playbooks_dir, db_path, as_json))
