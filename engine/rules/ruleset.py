"""A loaded playbook set: compiled rules in their final order, the matcher, the tests.

Built only by :func:`engine.rules.load.load_playbooks`; immutable once built, so that a set
can be shared between threads and swapped whole on reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.actions.base import ActionSpec
from engine.events import ErrorEvent
from engine.rules.match import Condition, Explanation, Matcher, RuleMatch
from engine.rules.model import ActionStep, Playbook, Policy, Rule, Step, TestCase
from engine.rules.templates import PlannedAction, Rendered, render_actions

__all__ = ["CompiledPolicy", "CompiledRule", "CompiledStep", "LoadedStep", "LoadedTest",
           "PlaybookSet"]


@dataclass(frozen=True)
class CompiledStep:
    """One action of a rule, ready to render: ``ref`` is ``adf.yaml:rule-id/actions[0]``."""

    ref: str
    spec: ActionSpec
    step: ActionStep
    with_: Mapping[str, Rendered]
    delay_s: int = 0


@dataclass(frozen=True)
class CompiledRule:
    """A rule as loaded: the Struct as written, its compiled condition and steps, durations in
    seconds, and where it was written (``file``, 1-based ``line``/``col``)."""

    rule: Rule
    file: str
    line: int
    col: int
    playbook: str
    condition: Condition
    actions: tuple[CompiledStep, ...]
    on_failure: tuple[CompiledStep, ...]
    cooldown_s: int | None = None
    budget_window_s: int | None = None
    verify_timeout_s: int | None = None
    verify_interval_s: int | None = None
    breaker_cool_off_s: int | None = None
    content_hash: str = ""
    """``sha256:<hex>`` of the playbook file's bytes as loaded: the audit log names the exact
    playbook version that planned an action."""

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def continue_(self) -> bool:
        return self.rule.continue_

    @property
    def enabled(self) -> bool:
        return self.rule.enabled

    @property
    def where(self) -> str:
        """``file:line`` of the rule, for explanations and messages."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy as loaded: the Struct as written, its compiled condition, where it was
    written."""

    policy: Policy
    file: str
    line: int
    col: int
    condition: Condition
    content_hash: str = ""
    """``sha256:<hex>`` of the playbook file's bytes as loaded (as a rule's)."""

    @property
    def id(self) -> str:
        return self.policy.id

    @property
    def where(self) -> str:
        """``file:line`` of the policy, for decisions and messages."""
        return f"{self.file}:{self.line}"

    def holds(self, event: ErrorEvent) -> bool:
        """Whether the policy's ``match`` holds for the event."""
        return self.condition.test(event, {})


@dataclass(frozen=True)
class LoadedStep:
    """One checked step of a sequence test: its ``line``, ``after`` in seconds, its inline
    event (if it gives one)."""

    step: Step
    line: int
    after_s: int = 0
    event: ErrorEvent | None = None


@dataclass(frozen=True)
class LoadedTest:
    """A playbook test case with where it was written; ``base`` resolves ``payload:``;
    ``steps`` is its checked ``sequence`` (empty for a one-event case)."""

    case: TestCase
    file: str
    line: int
    col: int
    base: Path
    event: ErrorEvent | None = None
    steps: tuple[LoadedStep, ...] = ()


@dataclass(frozen=True)
class PlaybookSet:
    """Every rule of every loaded file, in the order the matcher tries them."""

    rules: tuple[CompiledRule, ...]
    files: tuple[str, ...] = ()
    playbooks: tuple[Playbook, ...] = ()
    tests: tuple[LoadedTest, ...] = ()
    policies: tuple[CompiledPolicy, ...] = ()
    matcher: Matcher = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", Matcher(self.rules))

    def match(self, event: ErrorEvent) -> list[RuleMatch]:
        """The matching rules, first first; more than one only through ``continue``."""
        return self.matcher.match(event)

    def explain(self, event: ErrorEvent) -> Explanation:
        """Every rule tried and why it did or did not match."""
        return self.matcher.explain(event)

    def approval_policies(self, event: ErrorEvent) -> list[CompiledPolicy]:
        """The policies that require approval for the event, in file order."""
        return [p for p in self.policies if p.policy.approval == "required" and p.holds(event)]

    def approval(self, event: ErrorEvent, rules: list[RuleMatch]) -> tuple[bool, str]:
        """Whether the remediation of ``event`` by the matched ``rules`` waits for approval,
        and why: a matched rule's ``approval: required`` (the first rule's or one matched
        through ``continue``) or a policy's."""
        for m in rules:
            if m.rule.rule.approval == "required":
                return True, f"rule {m.rule.id} requires approval"
        policies = self.approval_policies(event)
        if policies:
            return True, "policy " + ", ".join(
                f"{p.id} ({p.where})" for p in policies) + " requires approval"
        return False, "no approval required"

    def rule(self, rule_id: str) -> CompiledRule | None:
        """The rule with this id, if loaded."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        return None

    def plan(
        self, event: ErrorEvent, *, attempts: int = 0, incident: Mapping[str, Any] | None = None
    ) -> list[tuple[RuleMatch, list[PlannedAction]]]:
        """Match ``event`` and render the actions of every matched rule (RenderError on a
        template that fails for this event)."""
        return [
            (m, render_actions(m, event, attempts=attempts, incident=incident))
            for m in self.match(event)
        ]

    def policies_summary(self) -> list[dict[str, Any]]:
        """One plain mapping per policy, for ``GET /api/playbooks``."""
        return [{"id": p.id, "file": p.file, "line": p.line, "description":
                 p.policy.description, "match": p.policy.match, "approval": p.policy.approval}
                for p in self.policies]

    def rules_summary(self) -> list[dict[str, Any]]:
        """One plain mapping per rule, in order, for ``GET /api/playbooks``."""
        return [
            {
                "id": r.id,
                "playbook": r.playbook,
                "file": r.file,
                "line": r.line,
                "description": r.rule.description,
                "enabled": r.enabled,
                "continue": r.continue_,
                "dry_run": r.rule.dry_run,
                "approval": r.rule.approval,
                "actions": [s.spec.name for s in r.actions],
                "on_failure": [s.spec.name for s in r.on_failure],
            }
            for r in self.rules
        ]
