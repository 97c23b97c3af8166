"""What every action is: a typed parameter Struct, a description, and how to run it.

The playbook loader sees actions only through :class:`ActionSpec` values handed to it, so that
``engine/rules`` never imports an action module or an SDK: this module and
``engine.actions.context`` import none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from engine.actions.context import ActionContext, ActionResult, Precheck, ProbeResult
from engine.errors import PermanentActionError
from engine.events import ErrorEvent

__all__ = [
    "ActionSpec",
    "Describe",
    "KeyFn",
    "Params",
    "PrecheckFn",
    "Probe",
    "Reconcile",
    "Run",
    "default_describe",
    "no_target",
    "params_key",
]


class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every action's parameter Struct: frozen, strict, keyword-only.

    msgspec applies ``kw_only`` only to the fields a class itself defines: declare every
    subclass as ``class XParams(Params, kw_only=True)``.
    """


def no_target(event: ErrorEvent) -> dict[str, Any]:
    """For actions that take nothing from the event (notify, ticket)."""
    return {}


Run = Callable[[Any, ErrorEvent, ActionContext], ActionResult]
Describe = Callable[[Any, ErrorEvent], str]
KeyFn = Callable[[Any, ErrorEvent], str]
Probe = Callable[[ActionResult, ActionContext], ProbeResult]
Reconcile = Callable[[Any, ErrorEvent, ActionContext], ActionResult | None]
PrecheckFn = Callable[[Any, ErrorEvent, ActionContext], Precheck]


def _not_runnable(params: Params, event: ErrorEvent, ctx: ActionContext) -> ActionResult:
    """The ``run`` of a declaration made only to be loaded (a test's action table): refuses."""
    raise PermanentActionError(f"{type(params).__name__}: this action is declared without a "
                               "run and cannot be called")


def default_describe(name: str) -> Describe:
    """A dry-run description for actions that need no better one: the name and parameters."""

    def describe(params: Params, event: ErrorEvent) -> str:
        fields = ", ".join(
            f"{key}={value!r}" for key, value in msgspec.structs.asdict(params).items()
            if value not in (None, "", (), {})
        )
        return f"would run {name}({fields})"

    return describe


def params_key(name: str, params: Params, *extra: str) -> str:
    """``<name>:<24 hex>`` over the canonical JSON of ``params`` and ``extra``.

    The same parameters (which hold the target taken from the event) give the same key, so
    the same remediation of the same failure is recognised however often it is planned.
    """
    basis = msgspec.json.encode(msgspec.to_builtins(params, order="sorted"))
    digest = hashlib.sha256(name.encode() + b"\x1f" + basis)
    for part in extra:
        digest.update(b"\x1f" + part.encode())
    return f"{name}:{digest.hexdigest()[:24]}"


@dataclass(frozen=True)
class ActionSpec:
    """The declaration of one action under its stable dotted name.

    ``target(event)`` gives the parameters taken from the event by default (factory, pipeline
    and run id; job, run and cluster id); ``target_fields`` names them, so that a playbook may
    leave them out of ``with:``. A playbook's ``with:`` adds to or overrides them; the merged
    parameters are validated against ``params``. ``mutating`` actions are only planned in
    dry-run. ``markup_params`` name the string parameters shown in a channel's markup (a chat
    message's text and title): rendered, they keep the marks around event-supplied values
    (:mod:`engine.text.markup`) for the channel to escape.

    The worker uses the rest:

    - ``run(params, event, ctx)`` makes the call and returns an :class:`ActionResult`; it
      raises :class:`~engine.errors.RetryableActionError` or
      :class:`~engine.errors.PermanentActionError` (never an SDK exception).
    - ``describe(params, event)`` is the dry-run sentence ("would rerun pipeline ...").
    - ``idempotency_key(params, event)`` is stable for the same remediation of the same failure.
    - ``probe(result, ctx)`` polls what ``run`` started; ``None`` for actions that start nothing.
    - ``reconcile(params, event, ctx)`` looks in the cloud whether the call was already made
      (after a crash between the call and the commit) and returns its result, or ``None``;
      ``None`` as a field for actions whose repetition is harmless or undetectable.
    - ``precheck(params, event, ctx)`` reads the target's current state right before ``run``
      and says whether it still needs the action (:class:`Precheck`): a forged or stale alert
      about a cluster that is running, or a run that succeeded or was already rerun, changes
      nothing. It only reads, so it also runs in dry-run; it raises like ``run`` (a
      retryable error is retried like the action, then escalates: never act blind). ``None``
      for actions with no cloud target to read (notify, ticket) or whose repetition is
      harmless (cancelling a finished run).
    - ``url_params`` names the parameters that are a URL the action sends to: the loader refuses
      one whose scheme and host are templated (event fields could send the data anywhere), and
      ``run`` must refuse a host that the settings do not allow.
    - ``link_params`` names the parameters that are a URL shown to people (a message's button):
      the loader refuses one that is not http(s) or whose scheme and host are templated (an
      alert could make the button a phishing or ``javascript:`` link); the params Struct
      refuses a rendered one that is not http(s) with a host.
    """

    name: str
    description: str
    params: type[Params]
    target: Callable[[ErrorEvent], dict[str, Any]] = no_target
    target_fields: tuple[str, ...] = ()
    mutating: bool = True
    markup_params: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    run: Run = _not_runnable
    describe: Describe | None = None
    idempotency_key: KeyFn | None = None
    probe: Probe | None = None
    reconcile: Reconcile | None = None
    url_params: tuple[str, ...] = ()
    precheck: PrecheckFn | None = None
    link_params: tuple[str, ...] = ()

    def describe_call(self, params: Params, event: ErrorEvent) -> str:
        """The dry-run sentence of this action: ``describe`` or the name and parameters."""
        return (self.describe or default_describe(self.name))(params, event)

    def key(self, params: Params, event: ErrorEvent) -> str:
        """The idempotency key: ``idempotency_key`` or :func:`params_key` of the parameters.

        Actions without a target (notify, ticket) add the event's dedup key: the same message
        about two failures is two messages.
        """
        if self.idempotency_key is not None:
            return self.idempotency_key(params, event)
        if self.target_fields:
            return params_key(self.name, params)
        return params_key(self.name, params, event.dedup_key)
