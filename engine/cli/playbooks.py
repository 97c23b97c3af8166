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
from rich.console import Console
from rich.table import Table

from engine.actions.registry import action_table
from engine.errors import PayloadError, PlaybookError
from engine.rules.load import PAYLOAD_SOURCES, load_playbooks, load_tests
from engine.rules.ruleset import LoadedTest, PlaybookSet
from engine.rules.schema import schema_json
from engine.rules.testing import format_results, run_tests
from receivers.simulate import parse_payload, simulate_payload

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


def run_validate(paths: Sequence[str]) -> int:
    """Load playbooks and their test files; print every problem. 0 if none, else 1."""
    try:
        playbooks, tests = _load(paths)
    except PlaybookError as exc:
        _echo_problems(exc.problems)
        click.echo(f"{len(exc.problems)} problem(s)", err=True)
        return 1
    click.echo(
        f"ok: {len(playbooks.rules)} rule(s) in {len(playbooks.files)} file(s),"
        f" {len(tests)} test(s)"
    )
    return 0


def run_test(paths: Sequence[str]) -> int:
    """Run the playbook tests; 0 if all pass, 1 on a failure, 2 if the playbooks do not load."""
    try:
        playbooks, tests = _load(paths)
    except PlaybookError as exc:
        _echo_problems(exc.problems)
        return 2
    results = run_tests(playbooks, tests, parse_payload)
    for line in format_results(results):
        click.echo(line)
    return 0 if all(r.passed for r in results) else 1


def _print_simulation(report: list[dict[str, Any]]) -> None:
    console = Console(file=sys.stdout, width=120)
    for n, item in enumerate(report):
        event = item["event"]
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


def run_simulate(
    source: str, payload: str, playbooks_dir: str, as_json: bool, attempts: int = 0
) -> int:
    """Parse ``payload`` and show what the playbooks would do. 0, 1 if the payload does not
    parse, 2 if the playbooks do not load."""
    try:
        playbooks = load_playbooks([playbooks_dir], action_table(), check_tests=False)
    except PlaybookError as exc:
        _echo_problems(exc.problems)
        return 2
    try:
        simulation = simulate_payload(playbooks, source, Path(payload).read_bytes(), attempts)
    except PayloadError as exc:
        click.echo(f"{payload}: {exc}", err=True)
        return 1
    except OSError as exc:
        click.echo(f"{payload}: cannot read: {exc.strerror}", err=True)
        return 1
    if as_json:
        click.echo(json.dumps(simulation, indent=2, default=str))
    else:
        _print_simulation(simulation["events"])
        if simulation["left_out"]:
            click.echo(f"{simulation['left_out']} more event(s) left out: only the first "
                       f"{len(simulation['events'])} are simulated")
    return 0


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
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Check playbooks (files or directories): every problem as file:line:col: message."""
    ctx.exit(run_validate(paths))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.pass_context
def test(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Run playbook tests; exit 1 on a failure, 2 if the playbooks do not load."""
    ctx.exit(run_test(paths))


@click.command()
@click.option("--source", required=True, type=click.Choice(PAYLOAD_SOURCES))
@click.argument("payload", type=click.Path(exists=True, dir_okay=False))
@click.option("--playbooks", "playbooks_dir", default="playbooks", show_default=True,
              type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--attempts", default=0, show_default=True, help="`attempts` for templates.")
@click.pass_context
def simulate(ctx: click.Context, source: str, payload: str, playbooks_dir: str, as_json: bool,
             attempts: int) -> None:
    """Show what the playbooks would do with a raw payload; touches nothing."""
    ctx.exit(run_simulate(source, payload, playbooks_dir, as_json, attempts))


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
@click.pass_context
def schema(ctx: click.Context, output: str | None) -> None:
    """Print the JSON Schema of the playbook format (for editors)."""
    ctx.exit(run_schema(output))
