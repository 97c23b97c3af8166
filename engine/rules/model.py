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
    "Rule",
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


class Expect(_Strict):
    """What a playbook test expects; a key left out is not checked.

    ``rule: null`` means "no rule matches"; ``params`` is a subset of the rendered parameters,
    keyed by action name.
    """

    rule: str | msgspec.UnsetType | None = msgspec.UNSET
    actions: list[str] | None = None
    params: dict[str, dict[str, Any]] | None = None


class TestCase(_Strict):
    """One playbook test: a raw payload (path relative to its file) or an inline event."""

    __test__ = False  # not a pytest class

    name: str
    expect: Expect
    source: str | None = None
    payload: str | None = None
    event: dict[str, Any] | None = None
    index: int | None = None


class Playbook(_Strict):
    """One playbook file. ``known_error_codes``: codes of your own (an ADF Fail activity's)
    that ``remediator validate`` takes as known, for every file of the set."""

    name: str
    priority: int | None = None
    description: str = ""
    known_error_codes: list[str] = msgspec.field(default_factory=list)
    rules: list[Rule] = msgspec.field(default_factory=list)
    tests: list[TestCase] = msgspec.field(default_factory=list)


class TestFile(_Strict):
    """A ``*.test.yaml`` file: tests only, for the playbooks of its directory."""

    __test__ = False

    tests: list[TestCase] = msgspec.field(default_factory=list)
