"""Time as a dependency: the engine asks a :class:`Clock`, so tests can move time by hand.

Every due time, lease, window and cooldown of the worker and the scheduler is computed from
``clock.now()``; nothing in the engine sleeps to wait for time to pass.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock", "WarpClock", "from_ms", "to_ms"]


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, the unit the store keeps times in."""
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    """The UTC time of ``ms`` milliseconds since the epoch (the inverse of :func:`to_ms`)."""
    return datetime.fromtimestamp(ms / 1000, UTC)


class Clock(Protocol):
    """Where the engine reads the current time (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current time in UTC."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that stands still until a test moves it; safe to share between threads."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The time the test set."""
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by ``seconds`` (and/or ``timedelta`` keywords); returns the new time."""
        with self._lock:
            self._now += timedelta(seconds=seconds, **delta)
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (which must be timezone-aware)."""
        if moment.tzinfo is None:
            raise ValueError("FakeClock.set needs a timezone-aware datetime")
        with self._lock:
            self._now = moment


class WarpClock:
    """The wall clock moved forward by an offset that :meth:`advance` grows: the demo's way of
    letting a 15-minute delay come due at once while time still flows. Thread-safe."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The wall-clock time plus the offset so far."""
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Jump forward by ``seconds`` (and/or ``timedelta`` keywords); returns the new time."""
        with self._lock:
            self._offset += timedelta(seconds=seconds, **delta)
        return self.now()
