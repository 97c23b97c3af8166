"""Decoding a sender's body, shared by the parsers so that they refuse bad bytes alike."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.errors import MalformedPayload

__all__ = ["decode_bytes"]


def decode_bytes(body: bytes | bytearray | memoryview | str) -> Any:
    """The JSON value in ``body``; :class:`MalformedPayload` if it is not UTF-8 JSON."""
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    try:
        return msgspec.json.decode(body)
    except UnicodeError as exc:
        raise MalformedPayload(f"the body is not valid UTF-8: {exc.reason}") from exc
    except msgspec.DecodeError as exc:
        raise MalformedPayload(f"the body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise MalformedPayload("the body is not valid JSON: nested too deeply") from exc
