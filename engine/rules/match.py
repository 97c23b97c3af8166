"""The matcher: conditions compiled once at load, rules indexed, explanations on demand.

Semantics (the contract playbook authors rely on):

- A ``match:`` mapping is a conjunction: every key must hold. Keys are event fields
  (``source``, ``error_code``, ...), dotted paths into ``attributes`` (``attributes.factory``,
  ``attributes.dimensions.Name``) or the combinators ``all: [..]``, ``any: [..]``, ``not: {..}``.
  An empty ``match`` matches every event.
- A value is an operator mapping or a shorthand: a scalar means ``equals``, a list means
  "any of". Operators: ``regex`` (a search, in RE2 syntax: linear time, no lookaround or
  backreferences; anchor with ``^``/``$``), ``glob`` (whole value, ``fnmatch`` syntax),
  ``contains`` (substring of a string, member of a list), ``exists``,
  ``gt``/``gte``/``lt``/``lte`` (numbers only), ``not`` (negates a value condition). Several
  operators in one mapping must all hold.
- Comparisons are exact and case-sensitive, for codes and names alike: ``UserErrorFileNotFound``
  is not ``usererrorfilenotfound``. The enumerated fields ``source``, ``kind`` and ``status``
  are lower-case; a value outside their sets is a load error rather than a silent non-match.
  Regexes may opt into ``(?i)``. A regex or glob reads the first ``TEXT_LIMIT`` (64 Ki)
  characters of a value (engine/text/patterns.py): no value costs more than that to match.
- On a list-valued field (``error_codes``, a list attribute) a condition holds when it holds
  for any element. A missing attribute, ``None``, ``""`` and an empty list do not "exist"
  and fail every other operator.
- A dotted path continues through a list of objects: ``attributes.failed_libraries.messages``
  gathers ``messages`` of every element of ``failed_libraries`` (a list value is spread, so
  this is every message of every library) into one list, and the condition holds when it
  holds for any of them, as on any list field (``{not: ..}`` then holds when it holds for
  none). Elements without the key are skipped; when none has it, the path is missing.
- ``regex`` named groups of the conditions that held are the rule's ``match`` for templates
  (a group that did not take part is ``None``).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from engine.events import KINDS, SOURCES, STATUSES, ErrorEvent
from engine.text import patterns

if TYPE_CHECKING:
    from engine.rules.ruleset import CompiledRule

__all__ = [
    "EVENT_FIELDS",
    "OPERATORS",
    "Condition",
    "Explanation",
    "Matcher",
    "RuleMatch",
    "RuleTrial",
    "compile_condition",
]

EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(ErrorEvent))
OPERATORS: tuple[str, ...] = (
    "contains", "equals", "exists", "glob", "gt", "gte", "lt", "lte", "not", "regex"
)
COMBINATORS: tuple[str, ...] = ("all", "any", "not")
_ENUMS: dict[str, tuple[str, ...]] = {"source": SOURCES, "kind": KINDS, "status": STATUSES}
# Top-level equality conditions on these fields feed the rule index.
_INDEXED: tuple[str, ...] = ("source", "kind", "status", "error_code", "resource", "failure_type")
_SCALARS = (str, int, float, bool)


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


_MISSING: Any = _Missing()

Report = Callable[[tuple[str | int, ...], str, bool], None]
"""``report(path relative to match, message, at_key)``: how the compiler names a problem."""


def _show(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _present(value: Any) -> bool:
    return value is not _MISSING and value is not None and value != "" and value != () and (
        not isinstance(value, list | dict) or bool(value)
    )


def _getter(path: str) -> Callable[[ErrorEvent], Any]:
    head, _, rest = path.partition(".")
    if not rest:
        return operator.attrgetter(head)
    keys = tuple(rest.split("."))

    def get_attribute(event: ErrorEvent) -> Any:
        return _walk(event.attributes, keys)

    return get_attribute


def _walk(value: Any, keys: tuple[str, ...]) -> Any:
    """Follow ``keys`` through mappings; at a list, follow the rest of them through each of
    its elements and give the values found as one flat list (missing if none was found)."""
    for i, key in enumerate(keys):
        if isinstance(value, dict):
            value = value.get(key, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif isinstance(value, list | tuple):
            return _spread(value, keys[i:])
        else:
            return _MISSING
    return value


def _spread(items: list[Any] | tuple[Any, ...], keys: tuple[str, ...]) -> Any:
    found: list[Any] = []
    for item in items:
        value = _walk(item, keys)
        if value is _MISSING:
            continue
        if isinstance(value, list | tuple):
            found.extend(value)
        else:
            found.append(value)
    return found if found else _MISSING


# A value test: (value, groups) -> bool. ``groups`` collects regex named groups.
ValueTest = Callable[[Any, dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class _ValueCond:
    """One operator applied to a value; ``describe`` is what it expected, for explanations."""

    test: ValueTest
    describe: str


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: ``test`` is the fast path, ``why`` explains a failure.

    ``spec`` is the condition as written (plain data), used to compare rules for the
    unreachable-rule check. ``groups`` lists the regex named groups inside it.
    """

    test: Callable[[ErrorEvent, dict[str, Any]], bool]
    why: Callable[[ErrorEvent], str | None]
    spec: Any
    groups: frozenset[str] = frozenset()
    # field -> allowed values, for top-level equality/any-of conditions on indexed fields
    index: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _never(event: ErrorEvent, groups: dict[str, Any] | None = None) -> bool:
    return False


def _each(value: Any, test: Callable[[Any], bool]) -> bool:
    if isinstance(value, tuple | list):
        return any(test(item) for item in value)
    return test(value)


class _Compiler:
    """Turns the plain ``match`` mapping into closures, reporting every problem it sees."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.groups: set[str] = set()

    # -- mappings of field conditions and combinators -------------------------------------
    def mapping(self, spec: Any, path: tuple[str | int, ...]) -> Condition:
        if not isinstance(spec, dict):
            self.report(path, f"expected a mapping of conditions, got {_kind(spec)}", False)
            return Condition(_never, lambda e: "invalid condition", spec)
        parts: list[Condition] = []
        index: dict[str, frozenset[str]] = {}
        for key, value in spec.items():
            where = (*path, key)
            if key == "all" or key == "any":
                parts.append(self.combinator(key, value, where))
            elif key == "not":
                inner = self.mapping(value, where)
                parts.append(_negate_mapping(inner, value))
            elif not isinstance(key, str) or not self._valid_field(key):
                self.report(
                    where,
                    f"unknown event field `{key}`; expected one of {', '.join(EVENT_FIELDS)},"
                    " attributes.<name>, all, any or not",
                    True,
                )
            else:
                cond = self.field(key, value, where)
                parts.append(cond)
                allowed = _equality_set(value)
                if key in _INDEXED and allowed is not None:
                    index[key] = allowed
        return _conjunction(parts, spec, index)

    def _valid_field(self, key: str) -> bool:
        if key in EVENT_FIELDS:
            return True
        head, _, rest = key.partition(".")
        return head == "attributes" and bool(rest) and all(rest.split("."))

    def combinator(self, key: str, value: Any, path: tuple[str | int, ...]) -> Condition:
        if not isinstance(value, list) or not value:
            self.report(path, f"`{key}` expects a non-empty list of conditions", False)
            return Condition(_never, lambda e: f"{key}: invalid", value)
        children = [self.mapping(item, (*path, i)) for i, item in enumerate(value)]
        return _all(children, value) if key == "all" else _any(children, value)

    # -- one field --------------------------------------------------------------------------
    def field(self, name: str, spec: Any, path: tuple[str | int, ...]) -> Condition:
        vc = self.value(name, spec, path)
        get = _getter(name)
        test, describe = vc.test, vc.describe

        def check(event: ErrorEvent, groups: dict[str, Any]) -> bool:
            return test(get(event), groups)

        def why(event: ErrorEvent) -> str | None:
            value = get(event)
            if test(value, {}):
                return None
            return f"{name}: expected {describe}, got {_show(value)}"

        return Condition(check, why, {name: spec})

    def value(self, name: str, spec: Any, path: tuple[str | int, ...]) -> _ValueCond:
        if isinstance(spec, dict):
            if not spec:
                self.report(
                    path,
                    f"empty condition: expected a value, a list or one of the operators"
                    f" {', '.join(OPERATORS)}",
                    False,
                )
                return _ValueCond(lambda v, g: False, "a valid condition")
            conds = []
            for op, arg in spec.items():
                conds.append(self.operator(name, op, arg, (*path, op)))
            if len(conds) == 1:
                return conds[0]
            tests = tuple(c.test for c in conds)
            return _ValueCond(
                lambda v, g: all(t(v, g) for t in tests), " and ".join(c.describe for c in conds)
            )
        if isinstance(spec, list):
            return self.any_of(name, spec, path)
        return self.equals(name, spec, path)

    def _scalar(self, name: str, value: Any, path: tuple[str | int, ...]) -> bool:
        if value is None:
            self.report(path, "null is not a value to compare with; use {exists: false}", False)
            return False
        if not isinstance(value, _SCALARS):
            self.report(path, f"expected a string, number or boolean, got {_kind(value)}", False)
            return False
        allowed = _ENUMS.get(name)
        if allowed is not None and value not in allowed:
            self.report(
                path, f"unknown {name} {_show(value)}; expected one of {', '.join(allowed)}", False
            )
            return False
        return True

    def equals(self, name: str, expected: Any, path: tuple[str | int, ...]) -> _ValueCond:
        if not self._scalar(name, expected, path):
            return _ValueCond(lambda v, g: False, "a valid value")
        if isinstance(expected, str):

            def eq_str(v: Any, g: dict[str, Any]) -> bool:
                if v.__class__ is str:
                    return v == expected
                return isinstance(v, tuple | list) and expected in v

            return _ValueCond(eq_str, _show(expected))
        return _ValueCond(lambda v, g: _each(v, lambda x: _eq(x, expected)), _show(expected))

    def any_of(self, name: str, options: list[Any], path: tuple[str | int, ...]) -> _ValueCond:
        if not options:
            self.report(path, "an empty list never matches; remove the condition", False)
            return _ValueCond(lambda v, g: False, "any of []")
        ok = all([self._scalar(name, item, (*path, i)) for i, item in enumerate(options)])
        if not ok:
            return _ValueCond(lambda v, g: False, "a valid value")
        describe = f"any of {_show(options)}"
        if all(isinstance(o, str) for o in options):
            strings = frozenset(options)

            def in_strings(v: Any, g: dict[str, Any]) -> bool:
                if v.__class__ is str:
                    return v in strings
                return isinstance(v, tuple | list) and any(
                    isinstance(x, str) and x in strings for x in v
                )

            return _ValueCond(in_strings, describe)
        frozen = tuple(options)
        return _ValueCond(
            lambda v, g: _each(v, lambda x: any(_eq(x, o) for o in frozen)), describe
        )

    def operator(self, name: str, op: Any, arg: Any, path: tuple[str | int, ...]) -> _ValueCond:
        fail = _ValueCond(lambda v, g: False, "a valid condition")
        if op == "equals":
            return self.equals(name, arg, path) if not isinstance(arg, list) else self.any_of(
                name, arg, path
            )
        if op in ("regex", "glob") and not isinstance(arg, str):
            self.report(path, f"`{op}` expects a string, got {_kind(arg)}", False)
            return fail
        if op == "regex":
            try:
                pattern = patterns.compile(arg)
            except patterns.PatternError as exc:
                self.report(path, f"invalid regex {_show(arg)}: {exc}", False)
                return fail
            self.groups.update(pattern.groupindex)
            return _ValueCond(_regex_test(pattern), f"to match regex {_show(arg)}")
        if op == "glob":
            fullmatch = patterns.glob(arg).fullmatch
            limit = patterns.TEXT_LIMIT
            return _ValueCond(
                lambda v, g: _each(
                    v, lambda x: isinstance(x, str) and fullmatch(x[:limit]) is not None
                ),
                f"to match glob {_show(arg)}",
            )
        if op == "contains":
            if not isinstance(arg, _SCALARS):
                self.report(
                    path, f"`contains` expects a string, number or boolean, got {_kind(arg)}", False
                )
                return fail
            return _ValueCond(_contains_test(arg), f"to contain {_show(arg)}")
        if op == "exists":
            if not isinstance(arg, bool):
                self.report(path, f"`exists` expects true or false, got {_kind(arg)}", False)
                return fail
            return _ValueCond(
                (lambda v, g: _present(v)) if arg else (lambda v, g: not _present(v)),
                "to exist" if arg else "not to exist",
            )
        if op in ("gt", "gte", "lt", "lte"):
            if isinstance(arg, bool) or not isinstance(arg, int | float):
                self.report(path, f"`{op}` expects a number, got {_kind(arg)}", False)
                return fail
            return _compare(op, arg)
        if op == "not":
            inner = self.value(name, arg, path)
            itest = inner.test
            return _ValueCond(lambda v, g: not itest(v, {}), f"not ({inner.describe})")
        self.report(
            path, f"unknown operator `{op}`; expected one of {', '.join(OPERATORS)}", True
        )
        return fail


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({_show(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _regex_test(pattern: patterns.Pattern) -> ValueTest:
    search = pattern.search
    named = bool(pattern.groupindex)
    limit = patterns.TEXT_LIMIT

    def test(v: Any, groups: dict[str, Any]) -> bool:
        items = v if isinstance(v, tuple | list) else (v,)
        for item in items:
            if isinstance(item, str):
                m = search(item if len(item) <= limit else item[:limit])
                if m is not None:
                    if named:
                        groups.update(m.groupdict())
                    return True
        return False

    return test


def _contains_test(arg: Any) -> ValueTest:
    def test(v: Any, groups: dict[str, Any]) -> bool:
        if isinstance(v, str):
            return isinstance(arg, str) and arg in v
        if isinstance(v, tuple | list):
            return any(_eq(x, arg) for x in v)
        if isinstance(v, dict):
            return arg in v
        return False

    return test


def _compare(op: str, bound: float) -> _ValueCond:
    symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    compare: Callable[[Any], bool] = {
        "gt": lambda x: x > bound,
        "gte": lambda x: x >= bound,
        "lt": lambda x: x < bound,
        "lte": lambda x: x <= bound,
    }[op]

    def test(v: Any, groups: dict[str, Any]) -> bool:
        return _each(
            v, lambda x: not isinstance(x, bool) and isinstance(x, int | float) and compare(x)
        )

    return _ValueCond(test, f"{symbol} {bound}")


def _equality_set(spec: Any) -> frozenset[str] | None:
    if isinstance(spec, str):
        return frozenset((spec,))
    if isinstance(spec, list) and spec and all(isinstance(x, str) for x in spec):
        return frozenset(spec)
    if isinstance(spec, dict) and len(spec) == 1 and "equals" in spec:
        return _equality_set(spec["equals"])
    return None


def _conjunction(
    parts: list[Condition], spec: Any, index: Mapping[str, frozenset[str]]
) -> Condition:
    groups = frozenset().union(*(p.groups for p in parts)) if parts else frozenset()
    if not parts:
        return Condition(lambda e, g: True, lambda e: None, spec, groups, index)
    if len(parts) == 1:
        only = parts[0]
        return Condition(only.test, only.why, spec, groups, index)
    tests = tuple(p.test for p in parts)

    def test(event: ErrorEvent, g: dict[str, Any]) -> bool:
        for t in tests:  # noqa: SIM110 - a plain loop is faster than all() on the hot path
            if not t(event, g):
                return False
        return True

    whys = tuple(p.why for p in parts)

    def why(event: ErrorEvent) -> str | None:
        for w in whys:
            reason = w(event)
            if reason is not None:
                return reason
        return None

    return Condition(test, why, spec, groups, index)


def _all(children: list[Condition], spec: Any) -> Condition:
    inner = _conjunction(children, spec, {})
    return Condition(inner.test, inner.why, {"all": spec}, inner.groups)


def _any(children: list[Condition], spec: Any) -> Condition:
    tests = tuple(c.test for c in children)

    def test(event: ErrorEvent, g: dict[str, Any]) -> bool:
        for t in tests:
            local: dict[str, Any] = {}
            if t(event, local):
                g.update(local)
                return True
        return False

    def why(event: ErrorEvent) -> str | None:
        reasons = [c.why(event) for c in children]
        if any(r is None for r in reasons):
            return None
        return f"any: none matched ({'; '.join(r for r in reasons if r)})"

    groups = frozenset().union(*(c.groups for c in children))
    return Condition(test, why, {"any": spec}, groups)


def _negate_mapping(inner: Condition, spec: Any) -> Condition:
    itest = inner.test

    def test(event: ErrorEvent, g: dict[str, Any]) -> bool:
        return not itest(event, {})

    def why(event: ErrorEvent) -> str | None:
        return f"not: the event matches {_show(spec)}" if itest(event, {}) else None

    return Condition(test, why, {"not": spec})


def _key_getter(fields: tuple[str, ...]) -> Callable[[ErrorEvent], Any]:
    """The event's values of ``fields`` as a tuple, even for one field."""
    if len(fields) == 1:
        get = operator.attrgetter(fields[0])
        return lambda event: (get(event),)
    return operator.attrgetter(*fields)


def compile_condition(spec: Any, report: Report) -> Condition:
    """Compile a ``match`` mapping; every problem goes to ``report`` (the result then never
    matches). ``Condition.groups`` names the regex groups that templates may use."""
    compiler = _Compiler(report)
    cond = compiler.mapping(spec, ())
    return Condition(cond.test, cond.why, cond.spec, frozenset(compiler.groups), cond.index)


class MatchTarget(Protocol):
    """What the matcher needs of a rule."""

    id: str
    condition: Condition
    continue_: bool
    enabled: bool
    where: str


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule that matched an event, with its regex named groups."""

    rule: CompiledRule
    groups: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RuleTrial:
    """One rule as tried for an explanation: matched, or the first condition that failed."""

    rule_id: str
    where: str
    matched: bool
    reason: str | None = None
    groups: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every rule tried in order, and the rules that matched (several with ``continue``)."""

    tried: list[RuleTrial]
    matched: list[RuleMatch]

    @property
    def rule_ids(self) -> list[str]:
        """The ids of the matched rules, in order."""
        return [m.rule.id for m in self.matched]


class Matcher:
    """Rules in their final order, indexed by every value they require.

    A rule's top-level equality (or any-of) conditions on the indexed fields (source, kind,
    status, resource, error_code, failure_type) are its keys. A rule with keys only on the
    enumerated fields (source, kind, status), or none, is merged at build time into one tuple
    per combination of their values that it accepts. A rule with a key on an open field
    (resource, error_code, failure_type) is filed in the table of its set of key fields under
    each tuple of values it accepts. An event's candidates are its combination's tuple and its
    entry in each table, merged in rule order; only they are tested. So a rule is tried only
    when all its keys hold: rules that require another resource, code or source cost nothing,
    whatever their number, and an event costs one lookup per table (a handful), plus a merge
    when a table hits. The matcher holds no mutable state.
    """

    _ENUMERATED = ("source", "kind", "status")
    _OPEN = ("resource", "error_code", "failure_type")
    # at most this many keys per rule: beyond, the field with the most values is left to the
    # rule's own test (a rule keeps at least one open field)
    _MAX_KEYS = 256

    def __init__(self, rules: Sequence[MatchTarget]) -> None:
        self.rules: tuple[MatchTarget, ...] = tuple(rules)
        fields = (*self._ENUMERATED, *self._OPEN)
        base: dict[tuple[str, ...], list[int]] = {
            combo: [] for combo in itertools.product(*(_ENUMS[f] for f in self._ENUMERATED))
        }
        tables: dict[tuple[str, ...], dict[tuple[str, ...], list[int]]] = {}
        for i, rule in enumerate(self.rules):
            if not rule.enabled:
                continue
            index = rule.condition.index
            keys = [f for f in fields if f in index]
            open_keys = [f for f in keys if f in self._OPEN]
            if not open_keys:
                for combo, members in base.items():
                    if all(v in index.get(f, (v,)) for f, v in zip(self._ENUMERATED, combo,
                                                                     strict=True)):
                        members.append(i)
                continue
            while len(keys) > 1 and math.prod(len(index[f]) for f in keys) > self._MAX_KEYS:
                droppable = [f for f in keys if f not in open_keys or len(open_keys) > 1]
                widest = max(droppable, key=lambda f: len(index[f]))
                keys.remove(widest)
                if widest in open_keys:
                    open_keys.remove(widest)
            table = tables.setdefault(tuple(keys), {})
            for values in itertools.product(*(sorted(index[f]) for f in keys)):
                table.setdefault(values, []).append(i)
        self._key = operator.attrgetter(*self._ENUMERATED)
        self._base = {combo: tuple(members) for combo, members in base.items()}
        self._tables = tuple(
            (_key_getter(key_fields), {values: tuple(ix) for values, ix in table.items()})
            for key_fields, table in tables.items()
        )
        # for an event whose enumerated values are outside their sets (never from a parser):
        # every rule of the combinations, which their own tests then decide
        self._enumerated_only = tuple(sorted(set().union(*base.values())))
        self._tests = tuple((r.condition.test, r.continue_) for r in self.rules)

    def _candidates(self, event: ErrorEvent) -> Sequence[int]:
        found = self._base.get(self._key(event))
        if found is None:
            found = self._enumerated_only
        hits: tuple[int, ...] = ()
        for key, table in self._tables:
            bucket = table.get(key(event))
            if bucket:
                hits += bucket
        if not hits:
            return found
        # each rule is in one table or in the combinations, so none comes twice
        return sorted(found + hits)

    def candidates(self, event: ErrorEvent) -> list[MatchTarget]:
        """The enabled rules that the index cannot rule out for ``event``, in order."""
        return [self.rules[i] for i in self._candidates(event)]

    def match(self, event: ErrorEvent) -> list[RuleMatch]:
        """The matching rules in order: the first without ``continue`` ends the list."""
        out: list[RuleMatch] = []
        tests = self._tests
        for i in self._candidates(event):
            test, cont = tests[i]
            groups: dict[str, Any] = {}
            if test(event, groups):
                out.append(RuleMatch(self.rules[i], groups))
                if not cont:
                    break
        return out

    def explain(self, event: ErrorEvent) -> Explanation:
        """Every rule in order: why it did not match, or its groups; slow, for people."""
        tried: list[RuleTrial] = []
        matched: list[RuleMatch] = []
        winner: MatchTarget | None = None
        for rule in self.rules:
            if not rule.enabled:
                tried.append(RuleTrial(rule.id, rule.where, False, "disabled"))
                continue
            if winner is not None:
                reason = f"not tried: rule `{winner.id}` matched first (without `continue`)"
                tried.append(RuleTrial(rule.id, rule.where, False, reason))
                continue
            groups: dict[str, Any] = {}
            if rule.condition.test(event, groups):
                tried.append(RuleTrial(rule.id, rule.where, True, None, groups))
                matched.append(RuleMatch(rule, groups))
                if not rule.continue_:
                    winner = rule
            else:
                reason = rule.condition.why(event) or "no match"
                tried.append(RuleTrial(rule.id, rule.where, False, reason))
        return Explanation(tried, matched)
