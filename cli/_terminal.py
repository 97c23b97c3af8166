"""Text from a server or a database as a terminal shows it: as it is.

A resource name comes from whoever can make a pipeline fail, a label from whoever holds the
shared key: an ESC sequence in one would drive the operator's terminal, a bidi override
(Trojan Source, CVE-2021-42574) would reverse the rest of the line. Such characters are
written as ``\\uXXXX``."""

from __future__ import annotations

import unicodedata

__all__ = ["shown"]

_HIDDEN = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def shown(value: object) -> str:
    """``str(value)`` with control, format (bidi, zero-width), private-use, surrogate and
    line-separator characters written as ``\\uXXXX``."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in _HIDDEN else c
                   for c in str(value))
