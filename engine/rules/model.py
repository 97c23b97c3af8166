"""The playbook format as msgspec Structs: YAML keys are the field names.

These Structs are the single source of the format: the loader checks documents against them
(every problem, with its position), ``remediator schema`` derives the JSON Schema from them, and
the rest of the engine reads the loaded values through them. Durations stay strings here (as
written); the loader checks them and the compiled rule carries seconds.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "ActionStep",
    "Breaker",
    "Budget",
    "Expect",
    "Playbook",
    "Policy",
    "Rule",
    "SilenceCase",
    "Step",
    "StepExpect",
    "TestCase",
    "TestFile",
    "Verify",
]


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every playbook Struct: unknown keys are errors."""


class ActionStep(_Strict):
    """One action of a rule: its registered name, parameters (templates) and a delay."""

    action: str
    with_: dict[str, Any] = msgspec.field(default_factory=dict, name="with")
    delay: str | None = None


class Verify(_Strict):
    """Probe the target after the action until it is terminal, at most ``timeout``."""

    timeout: str
    interval: str = "1m"


class Budget(_Strict):
    """At most ``max_attempts`` remediations per ``window``, counted per target, rule or
    fingerprint."""

    max_attempts: int
    window: str
    per: Literal["target", "rule", "fingerprint"] = "target"


class Breaker(_Strict):
    """The rule's circuit breaker per target: ``threshold`` consecutive failed remediations
    of one target open it for ``cool_off``; then one trial remediation may run. Either
    left out takes ``[engine]``'s ``breaker_threshold`` / ``breaker_cool_off_s``."""

    threshold: int | None = None
    cool_off: str | None = None


class Rule(_Strict):
    """A condition on events and what to do when it holds."""

    id: str
    description: str = ""
    priority: int | None = None
    enabled: bool = True
    match: dict[str, Any] = msgspec.field(default_factory=dict)
    continue_: bool = msgspec.field(default=False, name="continue")
    dry_run: bool = False
    approval: Literal["required", "none"] = "none"
    actions: list[ActionStep] = msgspec.field(default_factory=list)
    verify: Verify | None = None
    budget: Budget | None = None
    cooldown: str | None = None
    breaker: Breaker | None = None
    on_failure: list[ActionStep] = msgspec.field(default_factory=list)


class Policy(_Strict):
    """A policy across rules: whatever rule matched an event that ``match`` holds for (the
    rules' matcher language), ``approval: required`` makes its remediation wait for a person,
    as a rule's own ``approval: required`` does."""

    id: str
    description: str = ""
    match: dict[str, Any] = msgspec.field(default_factory=dict)
    approval: Literal["required"] = "required"


class SilenceCase(_Strict):
    """A silence in force during a playbook test: matchers as ``remediator silence add``
    takes them (``resource=~pl_finance_.*``); in a sequence it ends ``duration`` after the
    start (by itself), else it lasts the whole test."""

    matchers: list[str]
    comment: str = ""
    duration: str | None = None


class Expect(_Strict):
    """What a playbook test expects; a key left out is not checked.

    ``rule: null`` means "no rule matches"; ``params`` is a subset of the rendered parameters,
    keyed by action name; ``approval`` whether the remediation waits for a person (a matched
    rule's or a policy's ``approval: required``); ``silenced`` whether a silence of the case
    holds it.
    """

    rule: str | msgspec.UnsetType | None = msgspec.UNSET
    actions: list[str] | None = None
    params: dict[str, dict[str, Any]] | None = None
    approval: Literal["required", "none"] | None = None
    silenced: bool | None = None


class StepExpect(Expect):
    """What one step of a sequence expects, as :class:`Expect` (``actions`` are those
    planned in this step) and: ``blocked`` the guard that stopped the remediation (``null``:
    none did), ``state`` the incident's state after the step, ``delays`` the delay of each
    named action planned in it, ``ran`` the actions run in it."""

    blocked: str | msgspec.UnsetType | None = msgspec.UNSET
    state: str | None = None
    delays: dict[str, str] | None = None
    ran: list[str] | None = None


class Step(_Strict):
    """One step of a sequence: time passes (``after``), then at most one of a firing
    ``event`` (inline) or ``payload`` (with ``source``), a ``repeat`` of the last firing
    event (a new delivery of the same failure), its ``resolve``, or an ``approve`` of the
    waiting incident by that name. The actions that run or are verified during it end as
    ``outcome`` says (engine/runtime/sequence.py): ``succeeded``, ``failed`` (the run they
    started fails again) or ``error`` (the call fails for good)."""

    after: str | None = None
    event: dict[str, Any] | None = None
    payload: str | None = None
    source: str | None = None
    index: int | None = None
    repeat: bool = False
    resolve: bool = False
    approve: str | None = None
    outcome: Literal["succeeded", "failed", "error"] = "succeeded"
    expect: StepExpect | None = None


class TestCase(_Strict):
    """One playbook test: a raw payload (path relative to its file) or an inline event."""

    __test__ = False  # not a pytest class

    name: str
    expect: Expect | None = None
    source: str | None = None
    payload: str | None = None
    event: dict[str, Any] | None = None
    index: int | None = None
    silences: list[SilenceCase] = msgspec.field(default_factory=list)
    sequence: list[Step] = msgspec.field(default_factory=list)


class Playbook(_Strict):
    """One playbook file. ``known_error_codes``: codes of your own (an ADF Fail activity's)
    that ``remediator validate`` takes as known, for every file of the set."""

    name: str
    priority: int | None = None
    description: str = ""
    known_error_codes: list[str] = msgspec.field(default_factory=list)
    rules: list[Rule] = msgspec.field(default_factory=list)
    policies: list[Policy] = msgspec.field(default_factory=list)
    tests: list[TestCase] = msgspec.field(default_factory=list)


class TestFile(_Strict):
    """A ``*.test.yaml`` file: tests only, for the playbooks of its directory."""

    __test__ = False

    tests: list[TestCase] = msgspec.field(default_factory=list)
