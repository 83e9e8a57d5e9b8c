"""Clocks are passed in, so tests and drills can move time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def sleep_until(self, when: datetime) -> None:
        """Block until `when` (or return at once if it has passed)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Time that moves only when someone sleeps or advances it: a week in seconds."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now  # one attribute read is atomic; the lock guards the compare-and-move in sleep_until

    def sleep_until(self, when: datetime) -> None:
        with self._lock:
            if when > self._now:
                self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self.sleep_until(self.now() + delta)

    def set(self, when: datetime) -> None:
        """Move to `when`, forwards only: stored history never runs backwards."""
        self.sleep_until(when)


class ScaledClock:
    """Drills: time that runs `speed` times faster than real time, reading `start` at real Unix time `anchor`.

    Processes given the same start and anchor share one timeline (e.g. several dialer workers in a drill).
    """

    def __init__(self, start: datetime, speed: float, anchor: float | None = None):
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs a timezone-aware start time")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start, self.speed = start.astimezone(UTC), speed
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)

    def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds() / self.speed
        if delay > 0:
            time.sleep(delay)


def real_seconds_until(clock: Clock, when: datetime) -> float:
    """How long in real time until `clock` reads `when`, for a wait on real sockets (a scaled clock runs faster)."""
    return max(0.0, (when - clock.now()).total_seconds() / getattr(clock, "speed", 1.0))
