"""Durations as playbooks write them: ``30s``, ``15m``, ``2h``, ``1d``, ``1h30m``.

A duration is always a string with units, so that ``delay: 15`` (seconds? minutes?) cannot be
written by mistake.
"""

from __future__ import annotations

import re  # re: durations from playbooks and the command line, never event text

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds in ``text``; units d, h, m, s in that order, each at most once.

    Raises ValueError with a message fit for a playbook author when ``text`` does not parse.
    """
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or not text.strip() or not any(match.groups()):
        raise ValueError(
            f"invalid duration {text!r}: expected a number and a unit, like 30s, 15m, 2h, 1d"
            " or 1h30m"
        )
    return sum(int(v) * unit for v, unit in zip(match.groups(), _UNITS.values(), strict=True) if v)


def format_duration(seconds: int) -> str:
    """The shortest string that :func:`parse_duration` reads back as ``seconds``."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
