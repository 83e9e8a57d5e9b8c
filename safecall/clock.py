"""Clocks are passed in, so tests and drills can move time."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def sleep_until(self, when: datetime) -> None:
        """Block until `when` (or return at once if it has passed)."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)


class VirtualClock:
    """Time that moves only when someone sleeps or advances it: a week in seconds."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start time")
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep_until(self, when: datetime) -> None:
        with self._lock:
            if when > self._now:
                self._now = when.astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> None:
        self.sleep_until(self.now() + delta)

    def set(self, when: datetime) -> None:
        """Move to `when`, forwards only: stored history never runs backwards."""
        self.sleep_until(when)
