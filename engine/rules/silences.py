"""Silence matchers, in Alertmanager's sense: ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex`` on an event and its target.

A silence holds the remediation of every firing event whose matchers all hold: it is recorded,
not acted on (engine/silences.py keeps them; the ``silence`` guard applies them). Matching is
pure and bounded: at most :data:`MAX_MATCHERS` matchers, values of at most
:data:`MAX_VALUE` characters, regexes in RE2 (linear time) and anchored at both ends, as
Alertmanager anchors them. A field the event does not have is the empty string, so
``attributes.factory=""`` holds for an event without a factory, as a missing label does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from engine.events import ErrorEvent
from engine.text import patterns

__all__ = [
    "FIELDS",
    "MAX_MATCHERS",
    "MAX_VALUE",
    "OPS",
    "CompiledMatcher",
    "MatcherError",
    "MatcherSpec",
    "compile_matchers",
    "field_value",
    "matches",
    "parse_matcher",
]

Op = Literal["=", "!=", "=~", "!~"]
OPS: tuple[Op, ...] = ("=", "!=", "=~", "!~")
FIELDS: tuple[str, ...] = ("source", "kind", "target", "resource", "resource_id", "error_code",
                           "failure_type", "run_id")
"""The fields a matcher may name, besides ``attributes.<path>``."""
MAX_MATCHERS = 16
MAX_VALUE = 1000
_MAX_NAME = 200


class MatcherError(ValueError):
    """A matcher that cannot be used; the message names it and says why."""


class MatcherSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One matcher as stored and as the API takes it: ``{"name", "op", "value"}``."""

    name: str
    value: str
    op: Op = "="

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json_quote(self.value)}"


def json_quote(value: str) -> str:
    """The value as written back: bare when it is a plain word, else JSON-quoted."""
    plain = value and all(c.isalnum() or c in "._-:/*+?()[]|^$\\{},@#" for c in value)
    return value if plain else msgspec.json.encode(value).decode()


@dataclass(frozen=True)
class CompiledMatcher:
    """A matcher ready to test: its spec and, for ``=~``/``!~``, its anchored pattern."""

    spec: MatcherSpec
    pattern: patterns.Pattern | None = None

    def holds(self, value: str) -> bool:
        """Whether the matcher holds for a field's ``value``."""
        if self.pattern is None:
            equal = value == self.spec.value
        else:
            equal = self.pattern.fullmatch(patterns.clip(value)) is not None
        return equal if self.spec.op in ("=", "=~") else not equal


def parse_matcher(text: str) -> MatcherSpec:
    """``resource=~pl_finance_.*`` (as amtool writes it) to a spec: the first of ``!~``,
    ``=~``, ``!=``, ``=`` splits the name from the value; a value in double quotes is read
    as a JSON string. Raises :class:`MatcherError`."""
    best: tuple[int, str] | None = None
    for op in ("!~", "=~", "!=", "="):
        at = text.find(op)
        if at > 0 and (best is None or at < best[0]):
            best = (at, op)
    if best is None:
        raise MatcherError(f"matcher {text[:80]!r}: expected name=value, name!=value, "
                           "name=~regex or name!~regex")
    at, op = best
    name, value = text[:at].strip(), text[at + len(op):].strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            value = msgspec.json.decode(value.encode(), type=str)
        except msgspec.DecodeError as exc:
            raise MatcherError(f"matcher {text[:80]!r}: bad quoted value: {exc}") from None
    return MatcherSpec(name=name, op=op, value=value)  # type: ignore[arg-type]


def _check_name(name: str) -> None:
    if name in FIELDS:
        return
    head, _, rest = name.partition(".")
    if head == "attributes" and rest and len(name) <= _MAX_NAME and all(rest.split(".")):
        return
    raise MatcherError(f"matcher {name[:80]!r}: unknown field; expected one of "
                       f"{', '.join(FIELDS)} or attributes.<path>")


def compile_matchers(specs: Sequence[MatcherSpec]) -> tuple[CompiledMatcher, ...]:
    """Check and compile a silence's matchers: 1 to :data:`MAX_MATCHERS`, known fields,
    values of at most :data:`MAX_VALUE` characters, regexes that RE2 takes, and at least one
    matcher that does not hold for the empty string (else it would silence every event).
    Raises :class:`MatcherError` naming the matcher."""
    if not specs:
        raise MatcherError("a silence needs at least one matcher")
    if len(specs) > MAX_MATCHERS:
        raise MatcherError(f"a silence has at most {MAX_MATCHERS} matchers, got {len(specs)}")
    compiled = []
    for spec in specs:
        _check_name(spec.name)
        if len(spec.value) > MAX_VALUE:
            raise MatcherError(f"matcher {spec.name}{spec.op}: the value is longer than "
                               f"{MAX_VALUE} characters")
        pattern = None
        if spec.op in ("=~", "!~"):
            try:
                pattern = patterns.compile(f"(?:{spec.value})")
            except patterns.PatternError as exc:
                raise MatcherError(f"matcher {spec.name}{spec.op}: {exc}") from None
        compiled.append(CompiledMatcher(spec, pattern))
    if all(m.holds("") for m in compiled):
        raise MatcherError("every matcher holds for an empty value: the silence would hold "
                           "every event; name at least one field's value")
    return tuple(compiled)


def field_value(event: ErrorEvent, target: str, name: str) -> str:
    """The text a matcher compares: the field, ``target``, or the attribute at the dotted
    path; a missing one is ``""``, a non-text one its JSON."""
    if name == "target":
        return target
    head, _, rest = name.partition(".")
    value: Any
    if head == "attributes" and rest:
        value = event.attributes
        for key in rest.split("."):
            value = value.get(key) if isinstance(value, dict) else None
    else:
        value = getattr(event, name, None)
    if value is None:
        return ""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def matches(matchers: Sequence[CompiledMatcher], event: ErrorEvent, target: str) -> bool:
    """Whether every matcher holds for the event (on ``target``)."""
    return all(m.holds(field_value(event, target, m.spec.name)) for m in matchers)
