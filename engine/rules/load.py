"""Load playbook files into a :class:`PlaybookSet`, reporting every problem of every file.

Each problem is ``file:line:col: message`` (1-based). The checks, in the order they run:
YAML syntax; the format (unknown keys, wrong types, missing keys: every one, not the first);
then, for each rule that has the right shape, its match conditions, actions and their
parameters, templates and durations; across files, duplicate rule ids and rules that an
earlier rule without ``continue`` makes unreachable; finally the tests. A set with any
problem is refused whole (PlaybookError), so that nothing runs half loaded.

The table of actions comes in as an argument: this package imports no action module.
"""

from __future__ import annotations

import difflib
import hashlib
import re  # re: rule ids from playbook files only, never event text
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import msgspec

from engine.actions.base import ActionSpec
from engine.errors import PlaybookError
from engine.events import ErrorEvent
from engine.rules import _check, _yaml
from engine.rules.durations import parse_duration
from engine.rules.match import EVENT_FIELDS, compile_condition
from engine.rules.model import (
    ActionStep,
    Expect,
    Playbook,
    Policy,
    Rule,
    SilenceCase,
    Step,
    StepExpect,
    TestCase,
    TestFile,
)
from engine.rules.reachable import unreachable
from engine.rules.ruleset import (
    CompiledPolicy,
    CompiledRule,
    CompiledStep,
    LoadedStep,
    LoadedTest,
    PlaybookSet,
)
from engine.rules.silences import MatcherError, compile_matchers, parse_matcher
from engine.rules.templates import compile_value, contains_template, make_environment

__all__ = [
    "DEFAULT_PRIORITY",
    "PAYLOAD_SOURCES",
    "expand_paths",
    "load_playbooks",
    "load_tests",
]

DEFAULT_PRIORITY = 1000
"""The priority of a rule (and a file) that states none; lower priorities are tried first."""

PAYLOAD_SOURCES: tuple[str, ...] = ("adf", "synapse", "functions", "databricks")
"""The ``source`` of a test's raw payload: which sender (and so which parser) sent it."""

MAX_STEPS = 100
"""Steps of one sequence test."""
MAX_STEP_S = 7 * 86400
"""The longest ``after`` of a step."""
GUARD_NAMES: tuple[str, ...] = ("silence", "circuit", "budget", "cooldown", "lock")
"""The guards that may block a remediation (engine/guards.py), as a step's ``blocked``."""
INCIDENT_STATES: tuple[str, ...] = ("open", "remediating", "waiting_approval", "verifying",
                                    "resolved", "escalated", "ignored")
"""The incident states (engine/lifecycle.py; this package may not import it: a test holds
the two equal)."""

_RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_YAML_SUFFIXES = (".yaml", ".yml")
_TEST_SUFFIXES = (".test.yaml", ".test.yml")


def is_test_file(path: Path) -> bool:
    """``*.test.yaml`` files hold tests only."""
    return path.name.endswith(_TEST_SUFFIXES)


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """Playbook files and test files named by ``paths``.

    A directory means its ``*.yaml``/``*.yml`` files (not recursive), sorted by name; a test
    file also brings in the playbooks of its directory, which its tests may reference.
    """
    playbooks: list[Path] = []
    tests: list[Path] = []

    def add(target: list[Path], path: Path) -> None:
        if path not in target:
            target.append(path)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix in _YAML_SUFFIXES:
                    add(tests if is_test_file(child) else playbooks, child)
        elif is_test_file(path):
            add(tests, path)
            for sibling in sorted(path.parent.iterdir()):
                if sibling.suffix in _YAML_SUFFIXES and not is_test_file(sibling):
                    add(playbooks, sibling)
        else:
            add(playbooks, path)
    return playbooks, tests


@dataclass
class _Problems:
    """Problems of all files; sorted by file (as given), line and column when raised."""

    items: list[tuple[int, int, int, int, str]] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)

    def add(self, file: str, pos: tuple[int, int], message: str) -> None:
        order = self.files.setdefault(file, len(self.files))
        text = f"{file}:{pos[0]}:{pos[1]}: {message}"
        self.items.append((order, pos[0], pos[1], len(self.items), text))

    def messages(self) -> list[str]:
        return [item[-1] for item in sorted(self.items)]


@dataclass
class _File:
    path: Path
    display: str
    doc: _yaml.Document
    problems: _Problems
    bad: set[tuple[str | int, ...]] = field(default_factory=set)
    content_hash: str = ""

    def report(self, path: tuple[str | int, ...], message: str, at_key: bool = False) -> None:
        self.bad.add(path)
        self.problems.add(self.display, self.doc.position(path, at_key), message)

    def clean(self, prefix: tuple[str | int, ...]) -> bool:
        """Whether no problem was reported at or under ``prefix``."""
        n = len(prefix)
        return not any(p[:n] == prefix for p in self.bad)


def _read(path: Path, problems: _Problems) -> _File | None:
    display = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problems.add(display, (1, 1), f"cannot read file: {reason}")
        return None
    try:
        doc = _yaml.parse(text)
    except _yaml.YamlSyntaxError as exc:
        problems.add(display, (exc.line, exc.col), exc.message)
        return None
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return _File(path, display, doc, problems, content_hash=f"sha256:{digest}")


def _structure(file: _File, struct: type[msgspec.Struct], skip: tuple[str, ...] = ()) -> bool:
    """Check the file's top mapping against ``struct``, leaving out the keys ``skip``."""
    if not isinstance(file.doc.data, dict):
        what = "empty file" if file.doc.data is None else _check.describe_value(file.doc.data)
        file.report((), f"expected a mapping at the top of the file, got {what}")
        return False
    data = {k: v for k, v in file.doc.data.items() if k not in skip}
    _check.check(data, _check.type_info(struct), (), file.report)
    return True


@dataclass
class _Loader:
    actions: Mapping[str, ActionSpec]
    problems: _Problems = field(default_factory=_Problems)
    env: jinja2.Environment = field(default_factory=lambda: make_environment(mark_values=True))
    ids: dict[str, str] = field(default_factory=dict)
    policy_ids: dict[str, str] = field(default_factory=dict)

    # -- policies ---------------------------------------------------------------------------
    def policy(self, file: _File, i: int, policy: Policy) -> CompiledPolicy | None:
        base = ("policies", i)
        start = len(self.problems.items)
        if not _RULE_ID.match(policy.id):
            file.report((*base, "id"), f"invalid policy id {policy.id!r}: use letters, "
                        "digits, '.', '_' and '-'")
        elif policy.id in self.policy_ids:
            file.report((*base, "id"), f"duplicate policy id `{policy.id}`; first defined at "
                        f"{self.policy_ids[policy.id]}")
        else:
            line, col = file.doc.position((*base, "id"))
            self.policy_ids[policy.id] = f"{file.display}:{line}:{col}"
        if not policy.match:
            file.report((*base, "match") if "match" in file.doc.data["policies"][i] else base,
                        "a policy needs a `match`: one that holds for every event is a "
                        "setting, not a policy")
        condition = compile_condition(
            policy.match,
            lambda rel, message, at_key: file.report((*base, "match", *rel), message, at_key),
        )
        if len(self.problems.items) != start:
            return None
        line, col = file.doc.position(base)
        return CompiledPolicy(policy, file.display, line, col, condition,
                              content_hash=file.content_hash)

    # -- rules ------------------------------------------------------------------------------
    def rule(self, file: _File, i: int, rule: Rule, playbook: Playbook) -> CompiledRule | None:
        base = ("rules", i)
        start = len(self.problems.items)
        if not _RULE_ID.match(rule.id):
            file.report(
                (*base, "id"),
                f"invalid rule id {rule.id!r}: use letters, digits, '.', '_' and '-'",
            )
        elif rule.id in self.ids:
            first = self.ids[rule.id]
            file.report((*base, "id"), f"duplicate rule id `{rule.id}`; first defined at {first}")
        else:
            line, col = file.doc.position((*base, "id"))
            self.ids[rule.id] = f"{file.display}:{line}:{col}"
        condition = compile_condition(
            rule.match,
            lambda rel, message, at_key: file.report((*base, "match", *rel), message, at_key),
        )
        steps = {
            kind: tuple(
                self.step(file, (*base, kind, j), step, rule, condition.groups, f"{kind}[{j}]")
                for j, step in enumerate(getattr(rule, kind))
            )
            for kind in ("actions", "on_failure")
        }
        durations = {
            "cooldown_s": self.duration(file, (*base, "cooldown"), rule.cooldown),
            "budget_window_s": self.duration(
                file, (*base, "budget", "window"), rule.budget.window if rule.budget else None
            ),
            "verify_timeout_s": self.duration(
                file, (*base, "verify", "timeout"), rule.verify.timeout if rule.verify else None
            ),
            "verify_interval_s": self.duration(
                file, (*base, "verify", "interval"), rule.verify.interval if rule.verify else None
            ),
            "breaker_cool_off_s": self.duration(
                file, (*base, "breaker", "cool_off"),
                rule.breaker.cool_off if rule.breaker else None,
            ),
        }
        if rule.budget is not None and rule.budget.max_attempts < 1:
            file.report((*base, "budget", "max_attempts"), "max_attempts must be at least 1")
        if rule.breaker is not None and rule.breaker.threshold is not None \
                and rule.breaker.threshold < 1:
            file.report((*base, "breaker", "threshold"), "threshold must be at least 1")
        if durations["breaker_cool_off_s"] == 0:
            file.report((*base, "breaker", "cool_off"), "cool_off must be longer than 0s")
        if len(self.problems.items) != start:
            return None
        line, col = file.doc.position(base)
        return CompiledRule(
            rule=rule,
            file=file.display,
            line=line,
            col=col,
            playbook=playbook.name,
            condition=condition,
            actions=steps["actions"],
            on_failure=steps["on_failure"],
            content_hash=file.content_hash,
            **durations,
        )

    def duration(self, file: _File, path: tuple[str | int, ...], text: str | None) -> int | None:
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            file.report(path, str(exc))
            return None

    def step(
        self,
        file: _File,
        path: tuple[str | int, ...],
        step: ActionStep,
        rule: Rule,
        groups: frozenset[str],
        label: str,
    ) -> CompiledStep | None:
        spec = self.actions.get(step.action)
        delay = self.duration(file, (*path, "delay"), step.delay)
        if spec is None:
            close = difflib.get_close_matches(step.action, list(self.actions), n=1)
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else f"expected one of {', '.join(sorted(self.actions))}"
            )
            file.report((*path, "action"), f"unknown action `{step.action}`; {hint}")
            return None
        fields = {f.encode_name: f for f in msgspec.structs.fields(spec.params)}
        compiled = {}
        for key, value in step.with_.items():
            where = (*path, "with", key)
            f = fields.get(key)
            if f is None:
                expected = ", ".join(sorted(fields)) or "none"
                file.report(
                    where,
                    f"unknown parameter `{key}` for action `{spec.name}`; expected one of"
                    f" {expected}",
                    True,
                )
                continue
            if not contains_template(value):
                try:
                    msgspec.convert(value, f.type)
                except msgspec.ValidationError as exc:
                    file.report(where, f"parameter `{key}` of action `{spec.name}`: {exc}")
                else:
                    if key in spec.link_params and value and not _web_url(value):
                        file.report(where, f"parameter `{key}` of action `{spec.name}`: "
                                    "expected an http or https URL with a host")
            elif key in spec.url_params and not _literal_origin(value):
                file.report(
                    where,
                    f"parameter `{key}` of action `{spec.name}`: a templated URL must write out"
                    " its scheme and host before its first template (`https://host/{{ ... }}`):"
                    " a host taken from the event could send the data anywhere",
                )
            elif key in spec.link_params and not _literal_origin(value):
                file.report(
                    where,
                    f"parameter `{key}` of action `{spec.name}`: a templated link must write"
                    " out its scheme and host before its first template"
                    " (`https://host/{{ ... }}`): a link taken from the event could send whoever"
                    " clicks it anywhere",
                )
            compiled[key] = compile_value(
                self.env, value, lambda rel, msg, w=where: file.report((*w, *rel), msg), groups
            )
        for key, f in fields.items():
            if f.required and key not in step.with_ and key not in spec.target_fields:
                file.report(path, f"missing parameter `{key}` for action `{spec.name}`")
        return CompiledStep(
            ref=f"{file.path.name}:{rule.id}/{label}",
            spec=spec,
            step=step,
            with_=compiled,
            delay_s=delay or 0,
        )

    # -- tests ------------------------------------------------------------------------------
    def test(self, file: _File, path: tuple[str | int, ...], case: TestCase,
             rule_ids: set[str]) -> LoadedTest | None:
        start = len(self.problems.items)
        event, steps = None, ()
        if case.sequence:
            steps = self.sequence(file, path, case, rule_ids)
        else:
            if case.expect is None:
                file.report(path, "a test needs `expect` (or a `sequence` of steps)")
            event = self.source(file, path, case, case.name)
            if case.expect is not None:
                self.expect(file, (*path, "expect"), case.expect, rule_ids)
        for j, silence in enumerate(case.silences):
            self.silence(file, (*path, "silences", j), silence, bool(case.sequence))
        if len(self.problems.items) != start:
            return None
        line, col = file.doc.position(path)
        return LoadedTest(case, file.display, line, col, file.path.parent, event, steps)

    def source(self, file: _File, path: tuple[str | int, ...], case: TestCase | Step,
               name: str) -> ErrorEvent | None:
        """Check a case's or a step's ``payload``/``source``/``event``/``index``; the inline
        event, if any."""
        if (case.payload is None) == (case.event is None):
            file.report(path, "a test needs exactly one of `payload` (a file) or `event`")
        if case.payload is not None:
            if case.source not in PAYLOAD_SOURCES:
                got = "none" if case.source is None else repr(case.source)
                file.report(
                    (*path, "source") if case.source is not None else path,
                    f"a `payload` needs `source`: one of {', '.join(PAYLOAD_SOURCES)} (got {got})",
                )
            if not (file.path.parent / case.payload).is_file():
                file.report((*path, "payload"), f"payload file not found: {case.payload}")
        if case.index is not None and case.index < 0:
            file.report((*path, "index"), "index must be 0 or more")
        if case.event is not None:
            return self.event(file, (*path, "event"), case.event, name)
        return None

    def expect(self, file: _File, path: tuple[str | int, ...], expect: Expect,
               rule_ids: set[str]) -> None:
        if isinstance(expect.rule, str) and expect.rule not in rule_ids:
            file.report((*path, "rule"), f"unknown rule `{expect.rule}`")
        for j, name in enumerate(expect.actions or ()):
            if name not in self.actions:
                file.report((*path, "actions", j), f"unknown action `{name}`")
        for name in expect.params or {}:
            if name not in self.actions:
                file.report((*path, "params", name), f"unknown action `{name}`", True)
        if isinstance(expect, StepExpect):
            for j, name in enumerate(expect.ran or ()):
                if name not in self.actions:
                    file.report((*path, "ran", j), f"unknown action `{name}`")
            for name, delay in (expect.delays or {}).items():
                if name not in self.actions:
                    file.report((*path, "delays", name), f"unknown action `{name}`", True)
                else:
                    self.duration(file, (*path, "delays", name), delay)
            if isinstance(expect.blocked, str) and expect.blocked not in GUARD_NAMES:
                file.report((*path, "blocked"), f"unknown guard `{expect.blocked}`; expected "
                            f"one of {', '.join(GUARD_NAMES)} or null")
            if expect.state is not None and expect.state not in INCIDENT_STATES:
                file.report((*path, "state"), f"unknown incident state `{expect.state}`; "
                            f"expected one of {', '.join(INCIDENT_STATES)}")

    def sequence(self, file: _File, path: tuple[str | int, ...], case: TestCase,
                 rule_ids: set[str]) -> tuple[LoadedStep, ...]:
        for key in ("payload", "event", "source", "index", "expect"):
            if getattr(case, key) is not None:
                file.report((*path, key), f"`{key}` belongs in a step of the `sequence`", True)
        if len(case.sequence) > MAX_STEPS:
            file.report((*path, "sequence"), f"a sequence has at most {MAX_STEPS} steps, got "
                        f"{len(case.sequence)}")
        steps, fired = [], False
        for j, step in enumerate(case.sequence):
            where = (*path, "sequence", j)
            after = self.duration(file, (*where, "after"), step.after) or 0
            if after > MAX_STEP_S:
                file.report((*where, "after"), f"a step waits at most {MAX_STEP_S // 86400} "
                            "days")
            given = [k for k in ("event", "payload", "repeat", "resolve", "approve")
                     if getattr(step, k) not in (None, False)]
            if len(given) > 1:
                file.report(where, f"a step does one thing: {' and '.join(given)} given")
            elif not given and step.after is None:
                file.report(where, "a step needs one of `event`, `payload`, `repeat`, "
                            "`resolve`, `approve`, or `after` (time passes)")
            event = None
            if given and given[0] in ("event", "payload"):
                event = self.source(file, where, step, f"{case.name}#{j}")
                fired = True
            elif given and given[0] in ("repeat", "resolve") and not fired:
                file.report((*where, given[0]), f"`{given[0]}` needs an earlier step's event")
            if step.expect is not None:
                self.expect(file, (*where, "expect"), step.expect, rule_ids)
            line, _ = file.doc.position(where)
            steps.append(LoadedStep(step, line, after, event))
        return tuple(steps)

    def silence(self, file: _File, path: tuple[str | int, ...], silence: SilenceCase,
                in_sequence: bool) -> None:
        try:
            compile_matchers([parse_matcher(m) for m in silence.matchers])
        except MatcherError as exc:
            file.report((*path, "matchers"), str(exc))
        if silence.duration is not None:
            if not in_sequence:
                file.report((*path, "duration"), "a silence's `duration` is for a sequence")
            elif not self.duration(file, (*path, "duration"), silence.duration):
                file.report((*path, "duration"), "a silence lasts longer than 0s")

    def event(self, file: _File, path: tuple[str | int, ...], given: dict[str, Any],
              name: str) -> ErrorEvent | None:
        raw = dict(given)
        for key in raw:
            if key not in EVENT_FIELDS:
                file.report(
                    (*path, key),
                    f"unknown event field `{key}`; expected one of {', '.join(EVENT_FIELDS)}",
                    True,
                )
                return None
        raw.setdefault("status", "firing")
        raw.setdefault("dedup_key", f"test:{name}")
        try:
            return msgspec.convert(raw, ErrorEvent).with_fingerprint()
        except msgspec.ValidationError as exc:
            file.report(path, f"invalid event: {exc}")
            return None


_ORIGIN = re.compile(r"(?i)https?://[^/?#{}\s\\]+[/?#]")
"""A literal scheme and host, ended by the path, query or fragment (linear: anchored, one
class)."""


def _web_url(value: Any) -> bool:
    """Whether a literal value is an http(s) URL with a host."""
    return isinstance(value, str) and _ORIGIN.match(value + "/") is not None


def _literal_origin(value: Any) -> bool:
    """Whether a templated URL's text before its first template fixes the scheme and host."""
    if not isinstance(value, str):
        return False
    starts = [i for i in (value.find("{{"), value.find("{%"), value.find("{#")) if i >= 0]
    return _ORIGIN.match(value[: min(starts, default=len(value))]) is not None


def _order(files: list[tuple[_File, Playbook]]) -> list[tuple[int, _File, Playbook]]:
    ranked = sorted(
        files,
        key=lambda fp: (
            fp[1].priority if fp[1].priority is not None else DEFAULT_PRIORITY,
            fp[0].display,
        ),
    )
    return [(rank, f, p) for rank, (f, p) in enumerate(ranked)]


def load_playbooks(
    paths: Iterable[str | Path], actions: Mapping[str, ActionSpec], *, check_tests: bool = True
) -> PlaybookSet:
    """Load every playbook named by ``paths`` (files, or directories of ``*.yaml``).

    ``actions`` maps action names to their specs. Raises PlaybookError with every problem of
    every file, each as ``file:line:col: message``; the set is returned only when there is
    none. Rules are ordered by priority (lower first; a rule without one takes its file's,
    else DEFAULT_PRIORITY), then by file (files by priority, then path), then as written.

    ``check_tests=False`` (the server) neither checks nor loads the ``tests:`` of the files:
    tests are not rules, and a test's missing payload file must not keep the rules out of
    force. ``remediator validate`` and ``test`` keep the default.
    """
    playbook_files, _ = expand_paths(paths)
    loader = _Loader(actions)
    for path in playbook_files:  # problems are reported file by file, in the order given
        loader.problems.files.setdefault(str(path), len(loader.problems.files))
    loaded: list[tuple[_File, Playbook]] = []
    for path in playbook_files:
        file = _read(path, loader.problems)
        if file is None or not _structure(file, Playbook, skip=() if check_tests else ("tests",)):
            continue
        data = file.doc.data
        clean_top = {k: v for k, v in data.items() if k not in ("rules", "policies", "tests")}
        if not file.clean(("name",)) or not file.clean(("priority",)):
            continue
        try:
            playbook = msgspec.convert({**clean_top, "rules": [], "policies": [], "tests": []},
                                       Playbook)
        except msgspec.ValidationError:  # already reported by the structure check
            continue
        rules = [
            msgspec.convert(r, Rule)
            for i, r in enumerate(_rules_of(file))
            if file.clean(("rules", i))
        ]
        policies = [
            msgspec.convert(p, Policy)
            for i, p in enumerate(_listed(file, "policies"))
            if file.clean(("policies", i))
        ]
        loaded.append((file, msgspec.structs.replace(playbook, rules=rules, policies=policies)))

    compiled: list[tuple[tuple[int, int, int], CompiledRule]] = []
    for rank, file, playbook in _order(loaded):
        clean = [i for i in range(len(_rules_of(file))) if file.clean(("rules", i))]
        for i, rule in zip(clean, playbook.rules, strict=True):
            result = loader.rule(file, i, rule, playbook)
            if result is not None:
                priority = rule.priority if rule.priority is not None else (
                    playbook.priority if playbook.priority is not None else DEFAULT_PRIORITY
                )
                compiled.append(((priority, rank, i), result))
    compiled.sort(key=lambda item: item[0])
    rules = tuple(r for _, r in compiled)
    for rule, message in unreachable(rules):
        loader.problems.add(rule.file, (rule.line, rule.col), message)

    compiled_policies = []
    for file, playbook in loaded:  # files as given (policies all apply: order is irrelevant)
        clean = [i for i in range(len(_listed(file, "policies")))
                 if file.clean(("policies", i))]
        for i, policy in zip(clean, playbook.policies, strict=True):
            found = loader.policy(file, i, policy)
            if found is not None:
                compiled_policies.append(found)

    rule_ids = set(loader.ids)
    tests: list[LoadedTest] = []
    for file, _ in loaded if check_tests else ():
        tests.extend(_tests_of(loader, file, rule_ids))
    problems = loader.problems.messages()
    if problems:
        raise PlaybookError(problems)
    return PlaybookSet(
        rules=rules,
        files=tuple(f.display for f, _ in loaded),
        playbooks=tuple(p for _, p in loaded),
        tests=tuple(tests),
        policies=tuple(compiled_policies),
    )


def _rules_of(file: _File) -> list[Any]:
    return _listed(file, "rules")


def _listed(file: _File, key: str) -> list[Any]:
    raw = file.doc.data.get(key)
    return raw if isinstance(raw, list) else []


def _tests_of(loader: _Loader, file: _File, rule_ids: set[str]) -> list[LoadedTest]:
    raw = file.doc.data.get("tests")
    if not isinstance(raw, list):
        return []
    out = []
    for i, item in enumerate(raw):
        if not file.clean(("tests", i)):
            continue
        case = msgspec.convert(item, TestCase)
        loaded = loader.test(file, ("tests", i), case, rule_ids)
        if loaded is not None:
            out.append(loaded)
    return out


def load_tests(
    paths: Iterable[str | Path], playbooks: PlaybookSet, actions: Mapping[str, ActionSpec]
) -> list[LoadedTest]:
    """The tests of ``playbooks`` and of the ``*.test.yaml`` files named by ``paths``.

    Raises PlaybookError with every problem of the test files (positions as for playbooks).
    """
    _, test_files = expand_paths(paths)
    loader = _Loader(actions)
    rule_ids = {r.id for r in playbooks.rules}
    tests = list(playbooks.tests)
    for path in test_files:
        file = _read(path, loader.problems)
        if file is None or not _structure(file, TestFile):
            continue
        tests.extend(_tests_of(loader, file, rule_ids))
    problems = loader.problems.messages()
    if problems:
        raise PlaybookError(problems)
    return tests
