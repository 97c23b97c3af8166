"""Playbook tests, promtool-style: every case run, PASSED or FAILED with expected vs got.

Tests live under ``tests:`` in playbook files and in ``*.test.yaml`` files beside them. A case
gives a raw sender payload (a path relative to its file, parsed by the real parser, which
the caller passes in as ``parse`` since this package imports no receiver) or an inline
``event:``. The expectation applies to the first firing event of the payload, or to
``events[index]``; it names the first matching rule (``rule: null``: none), the planned action
names in order (every matched rule's, through ``continue``), a subset of the rendered
parameters of the first planned action of each named action, whether its remediation waits
for ``approval`` (``required``: a matched rule's or a policy's; ``none``) and whether a
silence of the case's ``silences:`` holds it (``silenced``). Parameters compare as JSON
values: a YAML list equals a tuple parameter, but ``"2"`` is not ``2`` and ``true`` is not ``1``.

A case with a ``sequence:`` runs through the engine itself on a simulated clock: the caller
passes that runner in as ``sequence`` (engine/runtime/sequence.py), as it passes ``parse``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from engine.errors import PayloadError
from engine.events import ErrorEvent
from engine.rules.match import Explanation
from engine.rules.ruleset import LoadedTest, PlaybookSet
from engine.rules.silences import compile_matchers, matches, parse_matcher
from engine.rules.templates import RenderError, render_actions

__all__ = ["CaseResult", "Parse", "SequenceRunner", "Target", "diff", "format_results", "pick",
           "run_tests", "same_json", "summary"]


Parse = Callable[[str, bytes], list[ErrorEvent]]
"""``parse(source, payload)``: a sender's raw payload to events (PayloadError if it cannot)."""
Target = Callable[[ErrorEvent], str]
"""``target(event)``: what a remediation of the event acts on (engine/runtime/pipeline.py)."""
SequenceRunner = Callable[[PlaybookSet, LoadedTest, Parse], "CaseResult"]
"""``sequence(playbooks, test, parse)``: a ``sequence:`` case run through the engine."""


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case; ``failures`` are readable expected/got blocks."""

    test: LoadedTest
    event: ErrorEvent | None
    failures: list[str] = field(default_factory=list)
    explanation: Explanation | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def title(self) -> str:
        return f"{self.test.file}::{self.test.case.name}"


def _show(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def diff(what: str, expected: Any, got: Any) -> str:
    """``what`` expected and got, as the report shows a failed expectation."""
    return f"{what}:\n  expected: {_show(expected)}\n  got:      {_show(got)}"


def same_json(a: Any, b: Any) -> bool:
    """Whether two values of ``msgspec.to_builtins`` are the same JSON value, kinds included:
    a list and a tuple are both arrays, ``2`` is ``2.0``, but ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    return bool(a == b)


def pick(test: LoadedTest, parse: Parse, case: Any = None,
         event: ErrorEvent | None = None) -> tuple[ErrorEvent | None, str | None]:
    """The event of a case (or of ``case``, a step, with its inline ``event``): inline, or
    the payload's first firing event or ``events[index]``; else None and why."""
    if case is None:
        case, event = test.case, test.event
    if event is not None:
        return event, None
    path = test.base / (case.payload or "")
    try:
        events = parse(case.source or "", path.read_bytes())
    except PayloadError as exc:
        return None, f"payload {case.payload} does not parse: {exc}"
    except OSError as exc:
        return None, f"payload {case.payload} cannot be read: {exc.strerror}"
    if case.index is not None:
        if case.index >= len(events):
            return None, f"payload gave {len(events)} event(s); index {case.index} is out of range"
        return events[case.index], None
    for event in events:
        if event.status == "firing":
            return event, None
    return None, f"payload gave no firing event ({len(events)} event(s)); use `index:`"


def run_case(playbooks: PlaybookSet, test: LoadedTest, parse: Parse,
             target: Target | None = None) -> CaseResult:
    """Run one case against ``playbooks`` (``target`` names the event's target for the
    silences' ``target`` matchers)."""
    event, problem = pick(test, parse)
    if event is None:
        return CaseResult(test, None, [problem or "no event"])
    expect = test.case.expect
    assert expect is not None  # the loader holds it
    matches = playbooks.match(event)
    explanation = playbooks.explain(event)
    failures: list[str] = []
    got_rule = matches[0].rule.id if matches else None
    if expect.rule is not msgspec.UNSET and expect.rule != got_rule:
        failures.append(diff("rule", expect.rule, got_rule))
    planned = []
    try:
        for m in matches:
            planned.extend(render_actions(m, event, attempts=0, incident={}))
    except RenderError as exc:
        failures.append(f"render: {exc}")
    names = [p.action for p in planned]
    if expect.actions is not None and expect.actions != names:
        failures.append(diff("actions", expect.actions, names))
    for action, subset in (expect.params or {}).items():
        first = next((p for p in planned if p.action == action), None)
        if first is None:
            failures.append(diff(f"params.{action}", subset, None))
            continue
        for key, want in subset.items():
            got = first.args.get(key, None)
            if not same_json(msgspec.to_builtins(want), msgspec.to_builtins(got)):
                failures.append(diff(f"params.{action}.{key}", want, got))
    if expect.approval is not None:
        required, why = playbooks.approval(event, matches)
        got_approval = "required" if matches and required else "none"
        if expect.approval != got_approval:
            failures.append(diff("approval", expect.approval, f"{got_approval} ({why})"))
    if expect.silenced is not None:
        on = target(event) if target is not None else ""
        held = [i for i, s in enumerate(test.case.silences)
                if matches_silence(s.matchers, event, on)]
        if expect.silenced != bool(held):
            got_held = f"silences:{held}" if held else False
            failures.append(diff("silenced", expect.silenced, got_held))
    return CaseResult(test, event, failures, explanation)


def matches_silence(matchers: Sequence[str], event: ErrorEvent, target: str) -> bool:
    """Whether a test's silence (matchers as written; checked at load) holds the event."""
    return matches(compile_matchers([parse_matcher(m) for m in matchers]), event, target)


def run_tests(
    playbooks: PlaybookSet, tests: Sequence[LoadedTest], parse: Parse, *,
    target: Target | None = None, sequence: SequenceRunner | None = None,
) -> list[CaseResult]:
    """Run every case, in order; never stops at the first failure. A ``sequence:`` case
    needs the ``sequence`` runner (without it, it fails saying so)."""
    results = []
    for test in tests:
        if not test.steps:
            results.append(run_case(playbooks, test, parse, target))
        elif sequence is None:
            results.append(CaseResult(test, None, ["sequence: no engine to run it here"]))
        else:
            results.append(sequence(playbooks, test, parse))
    return results


def _event_line(event: ErrorEvent) -> str:
    parts = [event.source, event.kind, event.status]
    for name in ("resource", "error_code", "message"):
        value = getattr(event, name)
        if value:
            text = value if len(value) <= 100 else value[:97] + "..."
            parts.append(f"{name}={text!r}")
    return " ".join(parts)


def format_results(results: Sequence[CaseResult]) -> list[str]:
    """The report lines: ``PASSED file::name`` or ``FAILED`` with the diff and the rules
    tried, then the summary line."""
    lines: list[str] = []
    for result in results:
        if result.passed:
            lines.append(f"PASSED {result.title}")
            continue
        lines.append(f"FAILED {result.title} (line {result.test.line})")
        if result.event is not None:
            lines.append(f"    event: {_event_line(result.event)}")
        for failure in result.failures:
            lines.extend("    " + line for line in failure.splitlines())
        if result.explanation is not None:
            lines.append("    rules tried:")
            for trial in result.explanation.tried:
                if trial.matched:
                    groups = f" {_show(trial.groups)}" if trial.groups else ""
                    lines.append(f"      {trial.rule_id} ({trial.where}): matched{groups}")
                else:
                    lines.append(f"      {trial.rule_id} ({trial.where}): {trial.reason}")
    lines.append(summary(results))
    return lines


def summary(results: Sequence[CaseResult]) -> str:
    """``N passed, M failed``."""
    passed = sum(1 for r in results if r.passed)
    return f"{passed} passed, {len(results) - passed} failed"
