"""Durations as playbooks write them."""

from __future__ import annotations

import pytest

from engine.rules.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     ("1d2h3m4s", 93784), ("0s", 0), (" 10m ", 600)],
)
def test_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15 minutes", "1w", "2hours", "1m30", "30m1h", "-5m"])
def test_refused(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(text)
    assert str(raised.value) == (
        f"invalid duration {text!r}: expected a number and a unit, like 30s, 15m, 2h, 1d or 1h30m"
    )


@pytest.mark.parametrize("seconds", [0, 1, 59, 60, 3600, 5400, 86400, 93784])
def test_format_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
