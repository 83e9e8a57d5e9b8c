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
    def like(cls, dialer: Dialer, calls_per_minute: float) -> "FixedRateDialer":
        fixed = cls(dialer.db, dialer.trunk, dialer.clock, dialer.campaign, dialer.flow, dialer.calendar, dialer.outcomes)
        fixed.tick = timedelta(minutes=1 / calls_per_minute)
        return fixed

    def _place_due(self, run) -> None:
        now = self.clock.now()
        if now < self.next_placement or not self.calendar.is_open(now):
            return
        self.next_placement = now + self.tick
        if len(self.in_flight) < self.trunk.capacity.channels:
            for attempt in self._claim(run, 1, now, self.tick):
                self._originate(run, attempt)
