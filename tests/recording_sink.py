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
        self.callers: dict[str, str] = {}
        self.heard: list[tuple[str, str, float]] = []
        self.transfers: list[tuple] = []  # (token, result, connected seconds) of calls for help put through
        self.messages: list[tuple] = []  # (token, ref, seconds) of messages left
        self._ids = itertools.count(1)

    def live_call(self, token: str) -> LiveCall | None:
        self.asked.append(token)
        if not self.live:
            return None
        return LiveCall(
            token=token,
            attempt_id=next(self._ids),
            flow=self.flow,
            call_id=self.call_ids.get(token),
            ivr_started=token in self.started,
        )

    def start_ivr(self, token: str, at: datetime) -> bool:
        if not self.live or token in self.started:
            return False
        self.started.add(token)
        return True

    def note_call_id(self, token: str, call_id: str) -> None:
        self.call_ids.setdefault(token, call_id)

    def record_keypress(
        self,
        token: str,
        digit: str,
        outcome: str,
        at: datetime,
        speech: tuple[str, float] | None = None,
        risk: bool = False,
    ) -> bool:
        self.keys.append((token, digit, outcome) + ((speech,) if speech else ()) + (("risk",) if risk else ()))
        return self.live

    def note_speech(self, token: str, text: str, confidence: float) -> None:
        self.heard.append((token, text, confidence))

    def open_inbound_call(self, caller: str, at: datetime) -> LiveCall | None:
        """A call-back from one of `self.callers` (caller -> token) opens that token's call, already started."""
        token = self.callers.get(caller)
        if token is None or not self.live:
            return None
        self.started.add(token)
        return self.live_call(token)

    def record_events(self, events: list[CallEvent]) -> None:
        self.events.extend(events)

    def record_transfer(self, token: str, result: str, at: datetime, connected_seconds: float | None = None) -> bool:
        self.transfers.append((token, result, connected_seconds))
        return self.live

    def record_message(self, token: str, ref: str, seconds: float, at: datetime) -> bool:
        self.messages.append((token, ref, seconds))
        return self.live
