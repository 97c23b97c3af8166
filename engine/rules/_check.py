"""Check plain data against a msgspec Struct type, reporting every problem (msgspec stops at
the first). Messages name keys as written in YAML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import inspect as mi

Path_ = tuple[str | int, ...]
Report = Callable[[Path_, str, bool], None]
"""``report(path, message, at_key)``."""


def describe_value(value: Any) -> str:
    """``a string ('x')``, ``an integer (3)``, ``a list``: what a YAML value is."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        text = repr(value)
        return f"a string ({text if len(text) <= 60 else text[:57] + '...'})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def describe_type(t: mi.Type) -> str:
    """What a schema type expects, in words."""
    if isinstance(t, mi.StrType):
        return "a string"
    if isinstance(t, mi.BoolType):
        return "a boolean (true or false)"
    if isinstance(t, mi.IntType):
        return "an integer"
    if isinstance(t, mi.FloatType):
        return "a number"
    if isinstance(t, mi.ListType):
        return "a list"
    if isinstance(t, mi.StructType | mi.DictType):
        return "a mapping"
    if isinstance(t, mi.NoneType):
        return "null"
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(repr(v) for v in t.values)
    if isinstance(t, mi.UnionType):
        return " or ".join(describe_type(m) for m in t.types)
    return "a value"


def _accepts_kind(t: mi.Type, value: Any) -> bool:
    """Whether ``t`` is the member of a union meant for ``value``'s kind."""
    if isinstance(t, mi.AnyType):
        return True
    if value is None:
        return isinstance(t, mi.NoneType)
    if isinstance(value, bool):
        return isinstance(t, mi.BoolType)
    if isinstance(value, int):
        return isinstance(t, mi.IntType | mi.FloatType)
    if isinstance(value, float):
        return isinstance(t, mi.FloatType)
    if isinstance(value, str):
        return isinstance(t, mi.StrType | mi.LiteralType)
    if isinstance(value, list):
        return isinstance(t, mi.ListType)
    if isinstance(value, dict):
        return isinstance(t, mi.StructType | mi.DictType)
    return False


def check(value: Any, t: mi.Type, path: Path_, report: Report) -> None:
    """Report every way ``value`` does not fit ``t``."""
    name = f"{path[-1]}: " if path and isinstance(path[-1], str) else ""
    if isinstance(t, mi.AnyType):
        return
    if isinstance(t, mi.UnionType):
        members = list(t.types)
        for member in members:
            if _accepts_kind(member, value):
                check(value, member, path, report)
                return
        report(path, f"{name}expected {describe_type(t)}, got {describe_value(value)}", False)
        return
    if not _accepts_kind(t, value):
        report(path, f"{name}expected {describe_type(t)}, got {describe_value(value)}", False)
        return
    if isinstance(t, mi.LiteralType) and value not in t.values:
        report(path, f"{name}expected {describe_type(t)}, got {describe_value(value)}", False)
    elif isinstance(t, mi.ListType):
        for i, item in enumerate(value):
            check(item, t.item_type, (*path, i), report)
    elif isinstance(t, mi.DictType):
        for key, item in value.items():
            if not isinstance(key, str):
                report((*path, key), f"keys must be strings, got {describe_value(key)}", True)
            else:
                check(item, t.value_type, (*path, key), report)
    elif isinstance(t, mi.StructType):
        fields = {f.encode_name: f for f in t.fields}
        for key, item in value.items():
            f = fields.get(key) if isinstance(key, str) else None
            if f is None:
                report(
                    (*path, key),
                    f"unknown key `{key}`; expected one of {', '.join(sorted(fields))}",
                    True,
                )
            else:
                check(item, f.type, (*path, key), report)
        for key, f in fields.items():
            if f.required and key not in value:
                report(path, f"missing required key `{key}`", False)


def type_info(struct: type[msgspec.Struct]) -> mi.Type:
    """The inspected type of a Struct (cached by msgspec itself)."""
    return mi.type_info(struct)
