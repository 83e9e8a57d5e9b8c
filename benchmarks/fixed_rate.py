"""A fixed-rate pacer, for comparison: one call every 60/R seconds, as Newfies-Dialer's "frequency" paces.

It places a call at each tick if a channel is free and someone is due, and
otherwise lets the tick pass; everything else (claims, outcomes, retries) is
SafeCall's own engine, so only the pacing differs.
"""

from __future__ import annotations

from datetime import timedelta

from safecall.dialer import Dialer


class FixedRateDialer(Dialer):
    @classmethod
    def like(cls, dialer: Dialer, calls_per_minute: float) -> FixedRateDialer:
        fixed = cls(dialer.db, dialer.trunk, dialer.clock, dialer.lifecycle)
        fixed.tick = timedelta(minutes=1 / calls_per_minute)
        return fixed

    def _place_due(self) -> None:
        now = self.clock.now()
        if now < self.next_placement:
            return
        due = self._due_runs(now)
        if not due:
            return
        self.next_placement = now + self.tick
        if len(self.in_flight) < self.trunk.capacity.channels:
            for entry, attempt in self._claim(due[:1], 1, now, now, self.tick):
                self._originate(entry, attempt)
