"""A simulated trunk: the fake for tests and the engine for the demo and drills.

Each call's course is derived from (seed, number, week, attempt), so it is the
same after a crash and restart. The IVR flow is walked with ivr.step, as the
real trunks do, and keypresses reach the sink at their own moment.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from safecall.clock import Clock
from safecall.errors import TrunkError
from safecall.ivr import Ask, Finish, NoInput, Pressed, Start, IvrState, speaking_seconds, step
from safecall.telephony.base import CallEvent, CallRequest, Capacity, KeypressSink, LineResult

# What a person does when called.
BEHAVIOURS = {
    "ack": "answers and presses 1",
    "help": "answers and presses 2",
    "no_key": "answers and never presses a key",
    "hangup": "answers and hangs up during the greeting",
    "no_answer": "lets it ring",
    "busy": "is on the phone",
    "congestion": "cannot be reached (network congestion)",
    "machine": "an answering machine picks up",
}


def _rng(*parts) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(order=True)
class _Pending:
    at: datetime
    order: int
    token: str = field(compare=False)
    kind: str = field(compare=False)  # answered, key, ended
    result: str | None = field(compare=False, default=None)
    digit: str | None = field(compare=False, default=None)
    outcome: str | None = field(compare=False, default=None)


class SimulatedTrunk:
    def __init__(self, config, clock: Clock, sink: KeypressSink, placed_log: Path | None = None):
        self.config = config
        self.placed_log = placed_log
        self.capacity = Capacity(config.channels, config.calls_per_second)
        self.clock = clock
        self.sink = sink
        # The latest originates, for drills and tests; bounded so a 100,000-person week does not grow memory.
        self.placed: deque[CallRequest] = deque(maxlen=10_000)
        self._queue: list[_Pending] = []
        self._active: set[str] = set()
        self._order = itertools.count()

    def behaviour(self, request: CallRequest) -> str:
        script = self.config.scripts.get(request.number)
        if script:
            return script[min(request.attempt_number, len(script)) - 1]
        seed = self.config.seed
        if _rng(seed, request.number, "invalid").random() * 100 < self.config.invalid_percent:
            return "invalid"
        if _rng(seed, request.number, request.week, "away").random() * 100 < self.config.away_percent:
            return "no_answer"
        names = list(self.config.mix)
        return _rng(seed, request.number, request.week, request.attempt_number).choices(
            names, weights=[self.config.mix[n] for n in names]
        )[0]

    def plan(self, request: CallRequest) -> list[_Pending]:
        """The whole course of one call, in time order."""
        behaviour = self.behaviour(request)
        rng = _rng(self.config.seed, request.number, request.week, request.attempt_number, "timing")
        start = request.placed_at

        def at(seconds: float) -> datetime:
            return start + timedelta(seconds=seconds)

        def event(seconds: float, kind: str, **extra) -> _Pending:
            return _Pending(at(seconds), next(self._order), request.token, kind, **extra)

        def ended(seconds: float, result: str) -> list[_Pending]:
            return [event(seconds, "ended", result=result)]

        if behaviour == "invalid":
            return ended(rng.uniform(0.5, 2), LineResult.INVALID_NUMBER)
        if behaviour == "busy":
            return ended(rng.uniform(2, 5), LineResult.BUSY)
        if behaviour == "congestion":
            return ended(rng.uniform(1, 4), LineResult.FAILED)
        ring = rng.uniform(4, 20)
        if behaviour == "no_answer" or ring >= request.ring_timeout:
            return ended(request.ring_timeout, LineResult.NO_ANSWER)
        events = [event(ring, "answered")]
        cutoff = ring + request.max_call_seconds
        if behaviour == "machine":
            return events + ended(min(cutoff, ring + rng.uniform(20, 40)), LineResult.MACHINE)
        t = ring
        state, action = step(request.flow, IvrState(), Start())
        while isinstance(action, Ask):
            talk = speaking_seconds(action.text)
            if behaviour == "hangup":
                return events + ended(min(cutoff, t + rng.uniform(1, talk)), LineResult.ANSWERED)
            if behaviour in ("ack", "help"):
                digit = "1" if behaviour == "ack" else "2"
                t += talk + rng.uniform(0.5, 3)
                state, action = step(request.flow, state, Pressed(digit))
            else:
                t += talk + action.timeout
                state, action = step(request.flow, state, NoInput())
        assert isinstance(action, Finish)
        if action.outcome and t < cutoff:
            events.append(event(t, "key", digit=action.digit, outcome=action.outcome))
        t += speaking_seconds(action.text)
        return events + ended(min(cutoff, t), LineResult.ANSWERED)

    def ready(self) -> bool:
        return True

    def originate(self, request: CallRequest) -> None:
        if len(self._active) >= self.capacity.channels:
            raise TrunkError(f"all {self.capacity.channels} channels are in use")
        self.placed.append(request)
        if self.placed_log:
            line = json.dumps({"token": request.token, "number": request.number, "attempt": request.attempt_number, "pid": os.getpid()})
            descriptor = os.open(self.placed_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(descriptor, (line + "\n").encode())  # one small O_APPEND write: whole or not at all
            finally:
                os.close(descriptor)
        self._schedule(request)

    def _schedule(self, request: CallRequest) -> None:
        self._active.add(request.token)
        for pending in self.plan(request):
            heapq.heappush(self._queue, pending)

    def wait_events(self, until: datetime) -> list[CallEvent]:
        """Events up to the next call's end (it frees a channel) or `until`; keypresses reach the sink at their moment.

        An answer alone does not wake the dialer: it has nothing to do until the call ends.
        """
        events = []
        while self._queue and self._queue[0].at <= until:
            self.clock.sleep_until(self._queue[0].at)
            now, ended = self.clock.now(), False
            while self._queue and self._queue[0].at <= now:
                pending = heapq.heappop(self._queue)
                if pending.kind == "key":
                    self.sink.record_keypress(pending.token, pending.digit, pending.outcome, pending.at)
                    continue
                if pending.kind == "ended":
                    self._active.discard(pending.token)
                    ended = True
                events.append(CallEvent(pending.token, pending.kind, pending.at, pending.result))
            if ended:
                return events
        self.clock.sleep_until(until)
        return events

    def recover(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        # The course is derivable: take the call up again where it stands now.
        self._schedule(request)
        return []

    def reconcile(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        return []  # every simulated call reports its end

    def close(self) -> None:
        self._queue.clear()
        self._active.clear()
