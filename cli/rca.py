"""``remediator rca``: the root-cause analysis of one sender payload.

The payload is parsed by the receivers' own parsers (the mapping of ``simulate``), and each
firing event is analysed by the engine's own Analyzer: offline when no ``[llm]`` is
configured. ``--show-prompt`` prints the redacted prompt that would be sent and calls nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import msgspec

from cli.playbooks import parse_payload
from engine.actions.registry import action_table
from engine.analysis import Analysis, Analyzer, make_rca
from engine.config import load_settings
from engine.errors import ConfigError, PayloadError, StorageError
from engine.logs import configure_logging
from engine.rules.load import PAYLOAD_SOURCES
from engine.store.db import Database
from engine.text import secret_values

__all__ = ["rca", "run_rca"]


def _print(analysis: Analysis, resource: str) -> None:
    click.echo(f"{resource}: {analysis.summary}")
    click.echo(f"  engine:     {analysis.engine}"
               + (f" ({analysis.model})" if analysis.model else ""))
    click.echo(f"  category:   {analysis.category} (retryable: "
               f"{'yes' if analysis.retryable else 'no'}, confidence {analysis.confidence:g})")
    click.echo(f"  cause:      {analysis.probable_cause}")
    for quote in analysis.evidence:
        click.echo(f"  evidence:   {quote}")
    for step in analysis.next_steps:
        click.echo(f"  next step:  {step}")
    if analysis.suggested_rule:
        click.echo("  suggested rule:")
        for line in analysis.suggested_rule.splitlines():
            click.echo(f"    {line}")
    for note in analysis.notes:
        click.echo(f"  note:       {note}")


def run_rca(source: str, payload: str, *, config: str | None, as_json: bool,
            show_prompt: bool) -> int:
    """Analyse the payload's firing events. 0 on success; 1 for a payload that does not
    parse or holds no firing event; 2 for bad settings."""
    try:
        settings = load_settings(config)
        secret_values.use(settings)  # the prompt masks them by value too
        # Logs go to stderr (redacted), so that stdout holds only the answer.
        configure_logging("warning", "console")
    except ConfigError as exc:
        click.echo(f"remediator rca: {exc}", err=True)
        return 2
    try:
        events = [e if e.fingerprint else e.with_fingerprint()
                  for e in parse_payload(source, Path(payload).read_bytes())]
    except PayloadError as exc:
        click.echo(f"{payload}: {exc}", err=True)
        return 1
    firing = [e for e in events if e.status == "firing"]
    if not firing:
        click.echo(f"{payload}: no firing event to analyse", err=True)
        return 1
    # The cache and the budget are the service's when an LLM is configured; otherwise
    # nothing is stored.
    path = settings.db if settings.llm is not None and not show_prompt else ":memory:"
    try:
        db = Database(path)
    except StorageError as exc:
        click.echo(f"remediator rca: {exc}", err=True)
        return 1
    analyzer: Analyzer = make_rca(settings, db, action_table())
    try:
        if show_prompt:
            for event in firing:
                click.echo(analyzer.prompt(event).text())
            return 0
        results = [(e, analyzer.analyze(e)) for e in firing]
    finally:
        analyzer.close()
        db.close()
    if as_json:
        click.echo(json.dumps([msgspec.to_builtins(a) for _, a in results], indent=2))
    else:
        for event, analysis in results:
            _print(analysis, event.resource or event.source)
    return 0


@click.command()
@click.option("--source", required=True, type=click.Choice(PAYLOAD_SOURCES))
@click.argument("payload", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--show-prompt", is_flag=True,
              help="Print the redacted prompt that would be sent; call nothing.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="TOML settings file ([llm]; offline without it).")
@click.pass_context
def rca(ctx: click.Context, source: str, payload: str, as_json: bool, show_prompt: bool,
        config: str | None) -> None:
    """Explain the failure in PAYLOAD (a raw sender payload) as the engine's RCA would."""
    ctx.exit(run_rca(source, payload, config=config, as_json=as_json, show_prompt=show_prompt))
