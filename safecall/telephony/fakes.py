"""An in-memory CallSink, the fake beside CallLifecycle: for testing a trunk's IVR side without a database."""

from __future__ import annotations

import itertools
from datetime import datetime

from safecall.ivr import IvrFlow
from safecall.telephony.base import CallEvent, LiveCall


class RecordingSink:
    """Every token is an open call of `flow` while `live`; keypresses, call ids and events are kept in lists."""

    def __init__(self, flow: IvrFlow, live: bool = True):
        self.flow, self.live = flow, live
        self.keys: list[tuple] = []
        self.events: list[CallEvent] = []
        self.call_ids: dict[str, str] = {}
        self.started: set[str] = set()
        self.asked: list[str] = []
        self._ids = itertools.count(1)

    def live_call(self, token: str) -> LiveCall | None:
        self.asked.append(token)
        if not self.live:
            return None
        return LiveCall(token=token, attempt_id=next(self._ids), flow=self.flow, call_id=self.call_ids.get(token),
                        ivr_started=token in self.started)

    def start_ivr(self, token: str, at: datetime) -> bool:
        if not self.live or token in self.started:
            return False
        self.started.add(token)
        return True

    def note_call_id(self, token: str, call_id: str) -> None:
        self.call_ids.setdefault(token, call_id)

    def record_keypress(self, token: str, digit: str, outcome: str, at: datetime) -> bool:
        self.keys.append((token, digit, outcome))
        return self.live

    def record_events(self, events: list[CallEvent]) -> None:
        self.events.extend(events)
