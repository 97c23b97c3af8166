"""Rules that earlier rules make unreachable: the loader refuses them.

A rule is unreachable when every event it matches is matched first by earlier rules without
``continue``. The check is conservative (it never refuses a rule that can match), and it sees
through the combinators: each ``match`` is written as a disjunction of plain conjunctions
(``any:`` branches become alternatives, ``all:`` is merged into its parent), so that

- ``any: [{error_code: A}, {error_code: B}]`` shadows a later ``error_code: A``;
- a later ``error_code: [A, B]`` is shadowed by an ``A`` rule and a ``B`` rule together.

An alternative ``a`` covers an alternative ``b`` when each condition of ``a`` is implied by a
condition of ``b`` on the same key: the same condition as written, or equality (any-of) with
``b``'s values among ``a``'s. Earlier alternatives are indexed (:class:`_Shadows`) so that a
set of 10,000 rules loads in about the time it takes to compile them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from typing import Any

from engine.rules.ruleset import CompiledRule

__all__ = ["alternatives", "unreachable"]

Alternative = dict[Any, tuple[Any, ...]]
"""One conjunction: a key (event field, attribute path, or ``not``) and every condition on
it, all of which must hold. The equality condition of a scalar field, if any, comes first."""

MAX_ALTERNATIVES = 64
"""More alternatives than this (a product of ``any:`` lists): the rule is compared as written."""

# Fields that hold one value: two equality conditions on one of them intersect. On a list
# (``error_codes``, a list attribute) each may hold for another element, so they stay apart.
_SCALAR_FIELDS = frozenset({"source", "kind", "status", "resource", "resource_id", "run_id",
                            "error_code", "message", "failure_type", "severity", "id",
                            "dedup_key", "fingerprint"})


def _values(spec: Any) -> frozenset[tuple[type, Any]] | None:
    """The values of an equality or any-of condition (None for any other condition)."""
    if isinstance(spec, dict) and list(spec) == ["equals"]:
        spec = spec["equals"]
    items = spec if isinstance(spec, list) else [spec]
    if not items or not all(isinstance(x, str | int) for x in items):
        return None
    return frozenset((type(x), x) for x in items)


def _implies(b: Any, a: Any) -> bool:
    """Whether condition ``b`` (on some key) holding means that ``a`` (on it) holds."""
    if a == b and type(a) is type(b):
        return True
    va, vb = _values(a), _values(b)
    return va is not None and vb is not None and vb <= va


def _covers(a: Alternative, b: Alternative) -> bool:
    """Whether every event matching alternative ``b`` surely matches ``a``."""
    for key, conditions in a.items():
        have = b.get(key)
        if have is None or not all(any(_implies(sb, sa) for sb in have) for sa in conditions):
            return False
    return True


def _add(alt: Alternative, key: Any, spec: Any) -> Alternative | None:
    """``alt`` with one more condition; None if it can no longer hold (disjoint values)."""
    have = alt.get(key, ())
    if key in _SCALAR_FIELDS and have and (mine := _values(spec)) is not None \
            and (theirs := _values(have[0])) is not None:
        common = [v for t, v in sorted(mine & theirs, key=repr)]
        if not common:
            return None
        return {**alt, key: ([*common], *have[1:])}
    if any(spec == h and type(spec) is type(h) for h in have):
        return alt
    if _values(spec) is not None and key in _SCALAR_FIELDS:
        return {**alt, key: (spec, *have)}
    return {**alt, key: (*have, spec)}


def _merge(left: list[Alternative], right: list[Alternative]) -> list[Alternative] | None:
    """Every alternative of ``left`` and ``right`` together (their conjunction); None if
    there would be too many."""
    if len(left) * len(right) > MAX_ALTERNATIVES:
        return None
    out = []
    for a, b in itertools.product(left, right):
        merged: Alternative | None = a
        for key, conditions in b.items():
            for spec in conditions:
                if merged is not None:
                    merged = _add(merged, key, spec)
        if merged is not None:
            out.append(merged)
    return out


def alternatives(spec: Any) -> list[Alternative] | None:
    """``spec`` (a ``match`` mapping) as alternatives, any of which may hold; None when that
    would take more than :data:`MAX_ALTERNATIVES` (or ``spec`` is not a mapping)."""
    if not isinstance(spec, dict):
        return None
    current: list[Alternative] = [{}]
    for key, value in spec.items():
        if key in ("all", "any") and isinstance(value, list) and value:
            parts = [alternatives(item) for item in value]
            if key == "any":
                union: list[Alternative] = []
                for part in parts:
                    if part is None:
                        return None
                    union.extend(part)
                parts = [union]
            for part in parts:
                merged = _merge(current, part) if part is not None else None
                if merged is None:
                    return None
                current = merged
        else:
            current = [a for a in (_add(alt, key, value) for alt in current) if a is not None]
    return current


def _as_written(spec: dict[Any, Any]) -> Alternative:
    return {key: (value,) for key, value in spec.items()}


def _pieces(alt: Alternative) -> list[Alternative]:
    """``alt`` split on the values of its any-of conditions (``error_code: [A, B]`` becomes
    ``A`` and ``B``), at most :data:`MAX_ALTERNATIVES` pieces; else ``[alt]``."""
    choices: list[list[tuple[Any, int, Any]]] = []
    for key, conditions in alt.items():
        for i, spec in enumerate(conditions):
            values = _values(spec)
            if values is not None and len(values) > 1:
                choices.append([(key, i, v) for _, v in sorted(values, key=repr)])
    if not choices or math.prod(len(c) for c in choices) > MAX_ALTERNATIVES:
        return [alt]
    pieces = []
    for combo in itertools.product(*choices):
        piece = dict(alt)
        for key, i, value in combo:
            conditions = list(piece[key])
            conditions[i] = value
            piece[key] = tuple(conditions)
        pieces.append(piece)
    return pieces


class _Shadows:
    """Alternatives of earlier rules without ``continue``, indexed so that finding the ones
    that might cover an alternative does not cost a pass over all of them.

    Alternatives are grouped by their set of keys; within a group, each key maps the values
    of single equality conditions to alternatives, and holds the alternatives with any other
    condition on it. An alternative can only be covered by one of a group whose keys it has
    all, that accepts the first value of each of its equality conditions.
    """

    def __init__(self) -> None:
        self.alts: list[tuple[int, Alternative, CompiledRule]] = []
        self.groups: dict[frozenset[Any], tuple[dict[Any, dict[Any, set[int]]],
                                                dict[Any, set[int]], set[int]]] = {}

    def add(self, position: int, rule: CompiledRule, alts: Iterable[Alternative]) -> None:
        for alt in alts:
            n = len(self.alts)
            self.alts.append((position, alt, rule))
            by_key, other, members = self.groups.setdefault(frozenset(alt), ({}, {}, set()))
            members.add(n)
            for key, conditions in alt.items():
                values = _values(conditions[0]) if len(conditions) == 1 else None
                if values is None:
                    other.setdefault(key, set()).add(n)
                else:
                    table = by_key.setdefault(key, {})
                    for v in values:
                        table.setdefault(v, set()).add(n)

    def _candidates(self, alt: Alternative) -> Iterator[tuple[int, Alternative, CompiledRule]]:
        keys = sorted(alt, key=str)
        if len(keys) > 10 or len(self.groups) <= 1 << len(keys):
            subsets: Iterable[frozenset[Any]] = list(self.groups)
        else:  # many groups: only those made of the alternative's own keys
            subsets = (
                frozenset(k for bit, k in enumerate(keys) if mask >> bit & 1)
                for mask in range(1 << len(keys))
            )
        firsts = {key: next(iter(v)) if (v := _values(conditions[0])) else None
                  for key, conditions in alt.items()}
        found: set[int] = set()
        for subset in subsets:
            group = self.groups.get(subset)
            if group is None or not subset <= alt.keys():
                continue
            by_key, other, members = group
            ids: set[int] | None = None
            for key in subset:
                accepted = set(other.get(key, ()))
                if firsts[key] is not None:
                    accepted |= by_key.get(key, {}).get(firsts[key], set())
                ids = accepted if ids is None else ids & accepted
                if not ids:
                    break
            found |= members if ids is None else ids
        for n in sorted(found, key=lambda i: self.alts[i][0]):
            yield self.alts[n]

    def first_cover(self, alt: Alternative) -> CompiledRule | None:
        """The earliest rule one of whose alternatives covers ``alt``."""
        for _, earlier, rule in self._candidates(alt):
            if _covers(earlier, alt):
                return rule
        return None

    def covers(self, alt: Alternative) -> list[CompiledRule] | None:
        """The earlier rules that together cover ``alt``, or None if they do not."""
        rule = self.first_cover(alt)
        if rule is not None:
            return [rule]
        pieces = _pieces(alt)
        if len(pieces) == 1:
            return None
        rules: list[CompiledRule] = []
        for piece in pieces:
            found = self.first_cover(piece)
            if found is None:
                return None
            rules.append(found)
        return rules


def unreachable(rules: Iterable[CompiledRule]) -> Iterator[tuple[CompiledRule, str]]:
    """Each enabled rule (in order) that earlier rules without ``continue`` always take
    first, with the message that says which."""
    shadows = _Shadows()
    positions: dict[str, int] = {}
    for position, rule in enumerate(rules):
        positions.setdefault(rule.id, position)
        if not rule.enabled:
            continue
        spec = rule.condition.spec
        alts = alternatives(spec)
        if alts is None:
            alts = [_as_written(spec)] if isinstance(spec, dict) else []
        covering: dict[str, CompiledRule] = {}
        for alt in alts:
            found = shadows.covers(alt)
            if found is None:
                covering = {}
                break
            covering.update((r.id, r) for r in found)
        if alts and covering:
            yield rule, _message(rule, sorted(covering.values(), key=lambda r: positions[r.id]))
        if not rule.continue_:
            shadows.add(position, rule, alts)


def _message(rule: CompiledRule, covering: list[CompiledRule]) -> str:
    if len(covering) == 1:
        return (f"rule `{rule.id}` can never match: rule `{covering[0].id}`"
                f" ({covering[0].where}) without `continue` matches every event it would")
    names = ", ".join(f"`{r.id}` ({r.where})" for r in covering)
    return (f"rule `{rule.id}` can never match: rules {names} without `continue` together"
            " match every event it would")
