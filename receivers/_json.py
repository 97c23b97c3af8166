"""Decoding a sender's body, shared by the parsers so that they refuse bad bytes alike."""

from __future__ import annotations

import json
from typing import Any, Final

import msgspec

from engine.errors import MalformedPayload

__all__ = ["decode_bytes", "decode_problem", "kind_of", "not_utf8"]


def not_utf8(body: bytes | str) -> MalformedPayload | None:
    """The error for a body that is not UTF-8, or None.

    Called only once decoding has failed: which of "not UTF-8" and "not JSON" a body is must
    not depend on how a msgspec release words (or orders) its own checks.
    """
    try:
        body.encode("utf-8") if isinstance(body, str) else body.decode("utf-8")
    except UnicodeError as exc:
        return MalformedPayload(f"the body is not valid UTF-8: {exc.reason}")
    return None


def decode_problem(body: bytes | str, exc: msgspec.DecodeError) -> str:
    """What is wrong with ``body``, which msgspec refused with ``exc``: its own words, except
    where they mislead. msgspec says "Input data was truncated" for a ``\\u`` escape of a
    lone high surrogate (``"\\ud800"``), which is complete JSON but no character: that case
    is named, found by the standard library's decoder (linear; it takes lone surrogates)."""
    text = str(exc)
    if text != "Input data was truncated":
        return text
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return text  # truncated indeed
    lone = _lone_surrogate(value)
    if lone is None:
        return text
    return (f"invalid \\u escape: \\u{lone:04x} is a lone UTF-16 surrogate (a high "
            "surrogate \\ud800-\\udbff must be followed by a low one, \\udc00-\\udfff), not a "
            "character")


def _lone_surrogate(value: Any) -> int | None:
    """The code of the first surrogate in a string (key or value) of ``value``, without
    recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:  # UTF-8 has no surrogates
                return ord(item[exc.start])
    return None


def decode_bytes(body: bytes | bytearray | memoryview | str) -> Any:
    """The JSON value in ``body``; :class:`MalformedPayload` if it is not UTF-8 JSON."""
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    try:
        return msgspec.json.decode(body)
    except (UnicodeError, msgspec.DecodeError) as exc:
        raise (not_utf8(body) or MalformedPayload(
            f"the body is not valid JSON: {decode_problem(body, exc)}")) from exc
    except RecursionError as exc:
        raise MalformedPayload("the body is not valid JSON: nested too deeply") from exc


# (types, JSON's name, msgspec's name): a message names a type as its parser's contract does.
_KINDS: Final = (
    (type(None), "null", "null"),
    (bool, "boolean", "bool"),
    (int, "number", "int"),
    (float, "number", "float"),
    (str, "string", "str"),
    (list | tuple, "array", "array"),
    (dict, "object", "object"),
)


def kind_of(value: object, *, msgspec_names: bool = False) -> str:
    """The name of a value's JSON type, for messages; ``msgspec_names``: as msgspec says it."""
    for types, json_name, msgspec_name in _KINDS:
        if isinstance(value, types):
            return msgspec_name if msgspec_names else json_name
    return type(value).__name__
