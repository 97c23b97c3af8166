"""``remediator validate | test | simulate | schema``: the playbook author's tools.

They call the engine's own loader, matcher and renderer, and the receivers' own parsers:
what they say is what the server would do. None of them touches a database or a cloud.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from cli.junit import write_junit
from cli.simulate_input import EventFileError, enrich_events, read_event
from engine import silences
from engine.actions.registry import action_table
from engine.config import load_settings
from engine.errors import ConfigError, PayloadError, PlaybookError, StorageError
from engine.events import utcnow
from engine.rules.lint import NOT_CHECKED, load_checked
from engine.rules.load import PAYLOAD_SOURCES, load_playbooks, load_tests
from engine.rules.ruleset import LoadedTest, PlaybookSet
from engine.rules.schema import schema_json
from engine.rules.testing import format_results, run_tests
from engine.runtime.pipeline import target_of
from engine.runtime.sequence import run_sequence
from engine.store.db import Database
from engine.store.silences import SilenceRow
from receivers.simulate import first_events, parse_payload, simulate_event

__all__ = [
    "parse_payload",
    "run_schema",
    "run_simulate",
    "run_test",
    "run_validate",
    "schema",
    "simulate",
    "test",
    "validate",
]

def _echo_problems(problems: Sequence[str]) -> None:
    for problem in problems:
        click.echo(problem, err=True)


def _load(paths: Sequence[str]) -> tuple[PlaybookSet, list[LoadedTest]]:
    """The playbooks under ``paths`` and their test files; :class:`PlaybookError` lists
    every problem."""
    actions = action_table()
    playbooks = load_playbooks(paths, actions)
    return playbooks, load_tests(paths, playbooks, actions)


def run_validate(paths: Sequence[str], *, strict: bool = False, config: str | None = None,
                 as_json: bool = False) -> int:
    """Load playbooks and their test files and lint them (against the settings ``config``, if
    given); print every problem and warning (``as_json``: one JSON object on stdout, docs/CLI.md).
    0 if there is no problem (and, under ``strict``, no warning), 1 otherwise, 2 if the settings
    do not load."""
    try:
        settings = load_settings(config) if config else None
    except ConfigError as exc:
        click.echo(f"remediator validate: {exc}", err=True)
        return 2
    try:
        playbooks, findings = load_checked(paths, action_table(), settings, config or "",
                                           strict=strict)
        tests = load_tests(paths, playbooks, action_table())
    except PlaybookError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "problems": list(exc.problems), "findings": [],
                                   "rules": 0, "files": 0, "tests": 0,
                                   "settings_checked": settings is not None}, indent=2))
            return 1
        _echo_problems(exc.problems)
        click.echo(f"{len(exc.problems)} problem(s)"
                   + (" (warnings are errors under --strict)" if strict else ""), err=True)
        return 1
    if as_json:
        click.echo(json.dumps({
            "ok": True, "problems": [],
            "findings": [{"file": f.file, "line": f.line, "col": f.col, "level": f.level,
                          "message": f.message} for f in findings],
            "rules": len(playbooks.rules), "files": len(playbooks.files), "tests": len(tests),
            "settings_checked": settings is not None}, indent=2))
        return 0
    _echo_problems([str(f) for f in findings])
    warnings = sum(f.level == "warning" for f in findings)
    if warnings:
        click.echo(f"{warnings} warning(s)", err=True)
    click.echo(
        f"ok: {len(playbooks.rules)} rule(s) in {len(playbooks.files)} file(s),"
        f" {len(tests)} test(s)"
    )
    if settings is None:
        click.echo(f"note: {NOT_CHECKED}", err=True)
    return 0


NO_TESTS = ("no tests in {paths}: write cases under `tests:` in a playbook or in a "
            "`*.test.yaml` file beside it (docs/PLAYBOOKS.md)")
"""What ``test`` says (exit 1) when the paths hold no test: a CI job must not pass on nothing."""


def run_test(paths: Sequence[str], *, as_json: bool = False, junit: str | None = None) -> int:
    """Run the playbook tests (and write them as JUnit XML to ``junit``, if given); 0 if all
    pass, 1 on a failure or when there is no test at all, 2 if the playbooks do not load or the
    report cannot be written. ``as_json``: one JSON object on stdout (docs/CLI.md)."""
    try:
        playbooks, tests = _load(paths)
    except PlaybookError as exc:
        _echo_problems(exc.problems)
        return 2
    if not tests:
        click.echo("remediator test: " + NO_TESTS.format(paths=", ".join(paths)), err=True)
        return 1
    results = run_tests(playbooks, tests, parse_payload, target=target_of,
                        sequence=run_sequence)
    if as_json:
        click.echo(json.dumps({
            "ok": all(r.passed for r in results),
            "passed": sum(r.passed for r in results),
            "failed": sum(not r.passed for r in results),
            "tests": [{"file": r.test.file, "line": r.test.line, "name": r.test.case.name,
                       "passed": r.passed, "failures": r.failures} for r in results],
        }, indent=2))
    else:
        for line in format_results(results):
            click.echo(line)
    if junit:
        try:
            write_junit(results, junit)
        except OSError as exc:
            click.echo(f"--junit-xml {junit}: {exc.strerror}", err=True)
            return 2
    return 0 if all(r.passed for r in results) else 1


def _print_simulation(report: list[dict[str, Any]]) -> None:
    console = Console(file=sys.stdout, width=120)
    for n, item in enumerate(report):
        event = item["event"]
        for note in (item.get("enrichment") or {}).get("notes", []):
            mark = "ok" if note["ok"] else "failed"
            detail = f": {note['detail']}" if note.get("detail") else ""
            console.print(f"enrichment: {note['call']} {mark}{detail}", markup=False)
        table = Table(title=f"event {n}", show_header=False)
        for key, value in event.items():
            if value not in ("", None, [], {}, ()):
                table.add_row(key, json.dumps(value, default=str)[:200])
        console.print(table)
        if not item["remediated"]:
            console.print(f"status is {event['status']}: only firing events are remediated")
        rules = Table(title="rules tried")
        for column in ("rule", "where", "result", "detail"):
            rules.add_column(column)
        for rule in item["rules"]:
            detail = json.dumps(rule["groups"]) if rule["matched"] else rule["reason"]
            rules.add_row(rule["id"], rule["where"], "MATCH" if rule["matched"] else "-", detail)
        console.print(rules)
        for plan in item["plan"]:
            guards = plan["guards"]
            console.print(f"[bold]{plan['rule']}[/bold]: " + ", ".join(
                f"{k}={json.dumps(v)}" for k, v in guards.items() if v not in (None, "none")
            ))
            if plan["error"]:
                console.print(f"[red]{plan['error']}[/red]")
            actions = Table()
            for column in ("step", "action", "params", "delay"):
                actions.add_column(column)
            for step in ("actions", "on_failure"):
                for action in plan[step]:
                    actions.add_row(
                        step, action["action"], json.dumps(action["params"]),
                        action["delay"] or "",
                    )
            console.print(actions)
        if not item["plan"]:
            console.print("no rule matches: root-cause analysis would explain this event")
        elif item["remediated"]:
            approval = item["approval"]
            console.print(f"approval: {'required' if approval['required'] else 'none'} "
                          f"({approval['reason']})", markup=False, soft_wrap=True)
        for held in item["silenced_by"]:
            console.print(f"silenced by {held['id']} ({held['text']}) until {held['ends_at']}, "
                          f"{held['author']}: {held['comment']}: recorded, not remediated",
                          markup=False, soft_wrap=True)


def run_simulate(
    source: str | None, payload: str | None, playbooks_dir: str, as_json: bool,
    attempts: int = 0, *, event_file: str | None = None, enrich: bool = False,
    config: str | None = None, db_path: str | None = None,
) -> int:
    """Parse ``payload`` (or read the event of ``event_file``), enrich it if asked (through
    the ``[clouds]`` of ``config``), and show what the playbooks would do. 0, 1 if the payload
    or event does not parse, 2 for bad usage, settings or playbooks."""
    usage = None
    if (payload is None) == (event_file is None):
        usage = "give a raw PAYLOAD (with --source) or --event FILE"
    elif payload is not None and source is None:
        usage = "--source is needed with a raw PAYLOAD: which sender sent it"
    elif event_file is not None and source is not None:
        usage = "--source is for a raw PAYLOAD: an event names its own source"
    if usage:
        click.echo(f"remediator simulate: {usage}", err=True)
        return 2
    try:
        settings = load_settings(config) if enrich else None
    except ConfigError as exc:
        click.echo(f"remediator simulate: {exc}", err=True)
        return 2
    try:
        playbooks = load_playbooks([playbooks_dir], action_table(), check_tests=False)
    except PlaybookError as exc:
        _echo_problems(exc.problems)
        return 2
    try:
        if event_file is not None:
            events = [read_event(event_file)]
        else:
            assert source is not None and payload is not None
            events = parse_payload(source, Path(payload).read_bytes())
    except EventFileError as exc:
        _echo_problems(exc.problems)
        return 1
    except PayloadError as exc:
        click.echo(f"{payload}: {exc}", err=True)
        return 1
    except OSError as exc:
        click.echo(f"{payload}: cannot read: {exc.strerror}", err=True)
        return 1
    events, left_out = first_events(events)
    try:
        in_force = _silences(db_path)
    except StorageError as exc:
        click.echo(f"remediator simulate: {db_path}: {exc}", err=True)
        return 2
    if settings is None:
        items = [simulate_event(playbooks, event, attempts, in_force) for event in events]
    else:
        items = []
        for received, enriched, notes in enrich_events(events, settings):
            for event in enriched:
                item = simulate_event(playbooks, event, attempts, in_force)
                item["enrichment"] = {"notes": notes,
                                      "received": msgspec.to_builtins(received)}
                items.append(item)
    if as_json:
        click.echo(json.dumps({"events": items, "left_out": left_out}, indent=2, default=str))
    else:
        _print_simulation(items)
        if left_out:
            click.echo(f"{left_out} more event(s) left out: only the first "
                       f"{len(events)} are simulated")
    return 0


def _silences(db_path: str | None) -> list[SilenceRow]:
    """The silences in force in the database at ``db_path`` (none without one)."""
    if db_path is None:
        return []
    db = Database(db_path)
    try:
        return silences.active(db, now=utcnow())
    finally:
        db.close()


def run_schema(output: str | None) -> int:
    """Print the JSON Schema of playbooks, or write it to ``output``."""
    text = schema_json(action_table())
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)
    return 0


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--strict", is_flag=True, help="Warnings are errors (exit 1): for CI.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Also check the channels, ticket system and clouds the actions name "
                   "against this settings file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/CLI.md).")
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], strict: bool,
             config: str | None, as_json: bool) -> None:
    """Check playbooks (files or directories): every problem and warning as
    file:line:col: message."""
    ctx.exit(run_validate(paths, strict=strict, config=config, as_json=as_json))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/CLI.md).")
@click.option("--junit-xml", "junit", default=None, type=click.Path(dir_okay=False),
              help="Also write the results as JUnit XML to this file (for CI).")
@click.pass_context
def test(ctx: click.Context, paths: tuple[str, ...], as_json: bool, junit: str | None) -> None:
    """Run playbook tests; exit 1 on a failure or if there is no test, 2 if the playbooks do
    not load."""
    ctx.exit(run_test(paths, as_json=as_json, junit=junit))


@click.command()
@click.option("--source", default=None, type=click.Choice(PAYLOAD_SOURCES),
              help="The sender of a raw PAYLOAD.")
@click.argument("payload", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--event", "event_file", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="An event instead of a payload: ErrorEvent fields in JSON or YAML.")
@click.option("--enrich", is_flag=True,
              help="Enrich first, through the [clouds] of --config (reads only).")
@click.option("--config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The settings whose [clouds] --enrich uses (REMEDIATOR_* apply).")
@click.option("--playbooks", "playbooks_dir", default="playbooks", show_default=True,
              type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--attempts", default=0, show_default=True, help="`attempts` for templates.")
@click.option("--db", "db_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Also show which silences in force in this database would hold it.")
@click.pass_context
def simulate(ctx: click.Context, source: str | None, payload: str | None,
             event_file: str | None, enrich: bool, config: str | None, playbooks_dir: str,
             as_json: bool, attempts: int, db_path: str | None) -> None:
    """Show what the playbooks would do with a raw payload or an event; changes nothing."""
    ctx.exit(run_simulate(source, payload, playbooks_dir, as_json, attempts,
                          event_file=event_file, enrich=enrich, config=config,
                          db_path=db_path))


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
@click.pass_context
def schema(ctx: click.Context, output: str | None) -> None:
    """Print the JSON Schema of the playbook format (for editors)."""
    ctx.exit(run_schema(output))
