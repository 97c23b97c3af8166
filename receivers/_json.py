"""Decoding a sender's body, shared by the parsers so that they refuse bad bytes alike."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from engine.errors import MalformedPayload

__all__ = ["decode_bytes", "kind_of", "not_utf8"]


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


def decode_bytes(body: bytes | bytearray | memoryview | str) -> Any:
    """The JSON value in ``body``; :class:`MalformedPayload` if it is not UTF-8 JSON."""
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    try:
        return msgspec.json.decode(body)
    except (UnicodeError, msgspec.DecodeError) as exc:
        raise (not_utf8(body) or MalformedPayload(f"the body is not valid JSON: {exc}")) from exc
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
