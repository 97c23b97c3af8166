"""Row ids: unique, and sorted by creation time."""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """A unique id that sorts by creation time: ``evt_0193a1b2c3d4e5f6a7b8c9``."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"
