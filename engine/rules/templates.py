"""Jinja2 templates in ``with:``: sandboxed, strict, compiled and checked at load.

Every string in an action's ``with:`` is a template. The names are ``event`` (the ErrorEvent),
``match`` (the rule's regex named groups), ``attempts`` (int) and ``incident`` (a mapping the
caller passes: id, state, attempts, url). Undefined names are errors (StrictUndefined), and the
immutable sandbox refuses private attributes (``__class__``, ``__globals__``) and mutation.
Output is not escaped here (these are API parameters, not HTML); instead every ``{{ }}`` output
is marked as event-supplied (:mod:`engine.text.markup`): the parameters an action names in
``ActionSpec.markup_params`` (a chat message's text and title) keep the marks, so that the
channel escapes those values and not the author's own markup; every other parameter, and the
plain form of every parameter (``PlannedAction.args``), is rendered without them. What can be
seen statically is refused at load; everything else fails at render as :class:`RenderError`,
never as a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import jinja2
import msgspec
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import PlaybookError
from engine.events import ErrorEvent
from engine.rules.match import EVENT_FIELDS
from engine.text import markup
from engine.text.patterns import compile as compile_pattern

if TYPE_CHECKING:
    from engine.rules.match import RuleMatch

__all__ = [
    "TEMPLATE_NAMES",
    "PlannedAction",
    "RenderError",
    "Rendered",
    "check_template",
    "compile_value",
    "make_environment",
    "render_actions",
    "render_step",
]

TEMPLATE_NAMES: tuple[str, ...] = ("event", "match", "attempts", "incident")

Rendered = Callable[[Mapping[str, Any]], Any]
"""A compiled ``with:`` value: the template context in, the rendered plain value out."""


class RenderError(PlaybookError):
    """A rule's action could not be rendered for an event; ``ref`` names the action."""

    def __init__(self, ref: str, message: str) -> None:
        self.ref = ref
        super().__init__([f"{ref}: {message}"])


MAX_FACTOR = 10_000
"""The largest constant a template may multiply by: `"=" * 80` is fine, `* 10**9` is not."""
MAX_RESULT = 100_000
"""The longest string or list, and the most digits of a number, that `*` may produce."""


class _TemplateEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with `*` bounded and `**` refused: Jinja's own sandbox bounds `range()`
    but would render `{{ event.resource * 10**9 }}` (gigabytes) or `{{ 9 ** 10**9 }}`.

    Intercepted operators are also never folded at compile time, so validating such a
    template cannot hang either.
    """

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise jinja2.sandbox.SecurityError("the power operator `**` is not allowed")
        if operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise jinja2.sandbox.SecurityError("a `%` format wider than 99,999 is not allowed")
        if _product_size(left, right) > MAX_RESULT:
            raise jinja2.sandbox.SecurityError(
                f"`*` would make a value larger than {MAX_RESULT:,} characters or digits")
        return super().call_binop(context, operator, left, right)


# The left operand of `%` can be event text: RE2, so that "%" + "0" * n costs n, not n².
_WIDE_FORMAT = compile_pattern(r"%[-+ #0]*(?:\*|\d{6,})|%[-+ #0]*\d*\.(?:\*|\d{6,})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _product_size(left: Any, right: Any) -> int:
    """The length (sequence times count) or digits (int times int) that ``left * right`` has."""
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and _is_int(count):
            return len(seq) * abs(count)
    if _is_int(left) and _is_int(right):
        return (left.bit_length() + right.bit_length()) * 3 // 10 + 1
    return 0


def make_environment(*, mark_values: bool = False) -> jinja2.Environment:
    """The one kind of environment templates run in (one per loaded set). Playbooks and the
    notification text use ``mark_values``: every ``{{ }}`` output is marked as event-supplied
    (:func:`engine.text.markup.untrusted`)."""
    return _TemplateEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
        finalize=markup.untrusted if mark_values else None,
    )


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def check_template(env: jinja2.Environment, source: str, groups: frozenset[str]) -> list[str]:
    """Every problem visible without an event: syntax, unknown names, unsafe attributes."""
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [f"template error: {exc.message}"]
    stored = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    problems: list[str] = []

    def add(message: str) -> None:
        if message not in problems:
            problems.append(message)

    if any(True for _ in tree.find_all(nodes.Pow)):
        add("the power operator `**` is not allowed in templates")
    for node in tree.find_all(nodes.Mul):
        factors = [n.value for n in (node.left, node.right) if isinstance(n, nodes.Const)]
        if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_FACTOR
               for v in factors):
            add(f"`*` by more than {MAX_FACTOR:,} is not allowed in templates")
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in TEMPLATE_NAMES and node.name not in stored:
                add(
                    f"unknown name `{node.name}` in template; available: "
                    f"{', '.join(TEMPLATE_NAMES)}"
                )
            continue
        key = _static_key(node)
        if key is None:
            continue
        if key.startswith("_"):
            add(f"unsafe attribute `{key}` in template: private attributes are not allowed")
            continue
        base = node.node
        if isinstance(base, nodes.Name) and base.name not in stored:
            if base.name == "event" and key not in EVENT_FIELDS:
                add(
                    f"`event.{key}` is not an event field; expected one of"
                    f" {', '.join(EVENT_FIELDS)}"
                )
            elif base.name == "match" and key not in groups:
                have = ", ".join(sorted(groups)) if groups else "none"
                add(
                    f"`match.{key}` is not a named group of a regex in this rule"
                    f" (groups: {have})"
                )
    try:  # compiling also checks what parsing does not: unknown filters and tests
        env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        add(f"template error: {exc.message}")
    return problems


def _static_key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def compile_value(
    env: jinja2.Environment, value: Any, report: Callable[[tuple[str | int, ...], str], None],
    groups: frozenset[str], path: tuple[str | int, ...] = (),
) -> Rendered:
    """Compile a ``with:`` value (strings anywhere inside are templates); problems to
    ``report(path, message)``."""
    if isinstance(value, str):
        if not _is_template(value):
            return lambda ctx: value
        problems = check_template(env, value, groups)
        for message in problems:
            report(path, message)
        if problems:
            return lambda ctx: value
        template = env.from_string(value)
        return lambda ctx: template.render(ctx)
    if isinstance(value, dict):
        parts = {k: compile_value(env, v, report, groups, (*path, k)) for k, v in value.items()}
        return lambda ctx: {k: f(ctx) for k, f in parts.items()}
    if isinstance(value, list):
        items = [compile_value(env, v, report, groups, (*path, i)) for i, v in enumerate(value)]
        return lambda ctx: [f(ctx) for f in items]
    return lambda ctx: value


def contains_template(value: Any) -> bool:
    """Whether ``value`` (a ``with:`` value) has a template anywhere inside."""
    if isinstance(value, str):
        return _is_template(value)
    if isinstance(value, dict):
        return any(contains_template(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_template(v) for v in value)
    return False


class PlannedAction(msgspec.Struct, frozen=True, kw_only=True):
    """An action rendered for one event: what the guards and the worker act on.

    ``params`` is the validated Params Struct of the action (its markup parameters with the
    marks of event-supplied values); ``args`` the same as plain data without marks (for audit,
    JSON and display). ``ref`` is the stable reference
    ``adf.yaml:adf-source-blob-missing/actions[0]``.
    """

    action: str
    ref: str
    rule_id: str
    params: Any
    args: dict[str, Any]
    delay_s: int = 0
    mutating: bool = True


# These are the failures Python raises from inside a template expression ({{ 1/0 }},
# {{ 'a' + 1 }}, {{ event.attributes['x'] }} on a missing key is undefined, not KeyError).
_RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError)


def render_actions(
    rule_match: RuleMatch,
    event: ErrorEvent,
    *,
    attempts: int,
    incident: Mapping[str, Any] | None = None,
    steps: Literal["actions", "on_failure"] = "actions",
) -> list[PlannedAction]:
    """Render a matched rule's ``actions`` (or ``on_failure``) for ``event``.

    Parameters are the action's defaults from the event (``ActionSpec.target``) updated with
    the rendered ``with:``, then converted to the action's Params Struct. Raises RenderError
    naming the action's reference and the field for an undefined name, a sandbox violation
    or a parameter that does not validate.
    """
    context = _context(rule_match, event, attempts, incident)
    return [_render(step, rule_match.rule.id, event, context)
            for step in getattr(rule_match.rule, steps)]


def render_step(
    rule_match: RuleMatch,
    event: ErrorEvent,
    index: int,
    *,
    attempts: int,
    incident: Mapping[str, Any] | None = None,
    steps: Literal["actions", "on_failure"] = "actions",
) -> PlannedAction | None:
    """Render one action of the rule, the ``index``-th of ``steps`` (None: the rule has no
    such action), as :func:`render_actions` renders each."""
    listed = getattr(rule_match.rule, steps)
    if not 0 <= index < len(listed):
        return None
    return _render(listed[index], rule_match.rule.id, event,
                   _context(rule_match, event, attempts, incident))


def _context(rule_match: RuleMatch, event: ErrorEvent, attempts: int,
             incident: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "event": event,
        # every group of the rule is defined; one whose regex did not take part is None
        "match": {**dict.fromkeys(rule_match.rule.condition.groups), **rule_match.groups},
        "attempts": attempts,
        "incident": dict(incident or {}),
    }


def _render(step: Any, rule_id: str, event: ErrorEvent,
            context: Mapping[str, Any]) -> PlannedAction:
    merged = dict(step.spec.target(event))
    keep = step.spec.markup_params
    for key, rendered in step.with_.items():
        try:
            value = rendered(context)
            merged[key] = value if key in keep else markup.strip_data(value)
        except jinja2.UndefinedError as exc:
            raise RenderError(step.ref, f"with.{key}: {exc.message}") from exc
        except jinja2.sandbox.SecurityError as exc:
            raise RenderError(step.ref, f"with.{key}: unsafe template: {exc}") from exc
        except _RENDER_ERRORS as exc:
            raise RenderError(step.ref, f"with.{key}: {type(exc).__name__}: {exc}") from exc
    try:
        params = msgspec.convert(merged, step.spec.params, strict=False)
    except msgspec.ValidationError as exc:
        raise RenderError(step.ref, f"invalid parameters: {exc}") from exc
    return PlannedAction(
        action=step.spec.name,
        ref=step.ref,
        rule_id=rule_id,
        params=params,
        args=markup.strip_data(msgspec.to_builtins(params)),
        delay_s=step.delay_s,
        mutating=step.spec.mutating,
    )
