"""A simulated trunk: the fake for tests and the engine for the demo and drills.

Each call's course is derived from (seed, number, week, attempt), so it is the
same after a crash and restart. Each answered call runs the same conversation
(safecall.conversation) real calls run, rendered as scheduled events: its IVR
session is claimed when it is answered, and an answer reaches the sink at its
own moment, before the thank-you.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import math
import os
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path

from safecall.clock import Clock
from safecall.conversation import (
    ANSWERED,
    CLAIM_REFUSED,
    CLAIMED,
    NO_INPUT,
    STORE_FAILED,
    STORED,
    Ask,
    Closing,
    Conversation,
    HangUp,
    KeepMessage,
    MessageRecorded,
    NoInput,
    NoteSpeech,
    NoteTransfer,
    Play,
    Pressed,
    RecordMessage,
    Said,
    Store,
    Stored,
    Transfer,
    TransferResult,
)
from safecall.errors import Message, SafeCallError, TrunkError
from safecall.i18n import N_
from safecall.ivr import speaking_seconds
from safecall.telephony.base import CallEvent, CallRequest, CallSink, Capacity, Check, LineResult, LiveCall, TrunkKind
from safecall.telephony.simulated_config import BEHAVIOURS, SimulatedTrunkConfig, parse_spoken  # noqa: F401 (re-exported)
from safecall.telephony.simulated_people import PersistentPeople

log = logging.getLogger("safecall.simulated")


def spoken(behaviour: str) -> Said:
    """The answer of a scripted "say:TEXT:CONFIDENCE", as the recogniser hears it."""
    return Said(*parse_spoken(behaviour))


# The keys the simulated people press, made once.
PRESSED = {"ack": Pressed("1"), "help": Pressed("2")}
SIMULATED_TRANSFER, NO_MESSAGE = TransferResult("no_answer"), MessageRecorded(None, 0)


class _Call:
    """An answered call while it goes on: the person's draws and the call's conversation."""

    __slots__ = ("request", "behaviour", "draws", "conversation", "cutoff", "resumed", "thanked", "digit")

    def __init__(
        self,
        request: CallRequest,
        behaviour: str,
        draws: _Draws,
        flow,
        cutoff: datetime,
        resumed: bool,
        thanked: bool,
    ):
        self.request, self.behaviour, self.draws, self.cutoff = request, behaviour, draws, cutoff
        self.conversation = Conversation(flow, listens=True)
        self.resumed = resumed  # carried on by the switch after a dialer's restart
        self.thanked = thanked  # its answer was stored and thanked before that restart
        self.digit: str | None = None


class _Granting:
    """The sink of a preview (SimulatedTrunk.plan): the session is granted and the answer stored; nothing is written."""

    def __init__(self) -> None:
        self.keys: list[dict] = []

    def live_call(self, token: str) -> LiveCall | None:
        return None  # a preview's call is never a resumed one

    def start_ivr(self, token: str, at: datetime) -> bool:
        return True

    def note_call_id(self, token: str, call_id: str) -> None:
        pass

    def record_keypress(
        self,
        token: str,
        digit: str,
        outcome: str,
        at: datetime,
        speech: tuple[str, float] | None = None,
        risk: bool = False,
    ) -> bool:
        self.keys.append({"digit": digit, "outcome": outcome})
        return True

    def note_speech(self, token: str, text: str, confidence: float) -> None:
        pass

    def open_inbound_call(self, caller: str, at: datetime) -> LiveCall | None:
        return None

    def record_events(self, events: list[CallEvent]) -> None:
        pass

    def record_transfer(self, token: str, result: str, at: datetime, connected_seconds: float | None = None) -> bool:
        return True

    def record_message(self, token: str, ref: str, seconds: float, at: datetime) -> bool:
        return True


class _Draws:
    """Uniform numbers fixed by what they are drawn for, e.g. (seed, number, week, attempt).

    The same call takes the same course after a restart. Hashing per four draws costs a quarter of
    seeding a random.Random per call, which was a tenth of the engine's simulated week.
    """

    def __init__(self, *parts):
        self._key = "|".join(map(str, parts)).encode()
        self._drawn = 0
        self._digest = b""

    def random(self) -> float:
        offset = self._drawn % 4 * 8
        if offset == 0:
            self._digest = hashlib.sha256(b"%s|%d" % (self._key, self._drawn // 4)).digest()
        self._drawn += 1
        return (int.from_bytes(self._digest[offset : offset + 8], "big") >> 11) / 2**53

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def weighted(self, cumulative: list[tuple[float, str]]) -> str:
        """One name from (running total of weights, name) pairs."""
        whole = cumulative[-1][0]
        point = min(self.random() * whole, math.nextafter(whole, 0))  # the product may round up to the whole
        return next(name for total, name in cumulative if point < total)


class SimulatedTrunk:
    def __init__(self, config: SimulatedTrunkConfig, clock: Clock, sink: CallSink, placed_log: Path | None = None):
        self.config = config
        self.placed_log = placed_log
        # Beside it (placed.keys.jsonl): the keys the person was thanked for, so a drill can tell a lost one.
        self.keys_log = placed_log.with_suffix(".keys.jsonl") if placed_log else None
        self.capacity = Capacity(config.channels, config.calls_per_second)
        self.clock = clock
        self.sink = sink
        # The latest originates, for drills and tests; bounded so a 100,000-person week does not grow memory.
        self.placed: deque[CallRequest] = deque(maxlen=10_000)
        # (at, order, token, kind, extra): plain tuples, as a heap of them is compared in C. kind: answered, key, ended.
        self._queue: list[tuple] = []
        self._active: set[str] = set()
        self._order = itertools.count()
        self._mix = list(zip(itertools.accumulate(config.mix.values()), config.mix, strict=True))
        self._record: tuple[set[str], set[str]] | None = None  # the placed log as this trunk first recovered
        # people = "persistent": each number has habits that last from week to week (simulated_people.py).
        self.people = PersistentPeople(config.seed, _Draws) if config.people == "persistent" else None

    def behaviour(self, request: CallRequest, draws: _Draws | None = None) -> str:
        """What the person does on this call; `draws`: the call's own, if the caller goes on drawing from them."""
        script = self.config.scripts.get(request.number)
        if script:
            return script[min(request.attempt_number, len(script)) - 1]
        draws = draws or _Draws(self.config.seed, request.number, request.week, request.attempt_number)
        if self.people:
            return self.people.behaviour(request.number, request.week, request.placed_at, draws)
        seed = self.config.seed
        if _Draws(seed, request.number, "invalid").random() * 100 < self.config.invalid_percent:
            return "invalid"
        if _Draws(seed, request.number, request.week, "away").random() * 100 < self.config.away_percent:
            return "no_answer"
        return draws.weighted(self._mix)

    def plan(self, request: CallRequest) -> list[tuple]:
        """The whole course of one call when its IVR session is granted and its answer stored, in time order:
        (at, order, token, kind, extra) with kind answered, key or ended.
        For tests and drills: the sink is not asked."""
        granting = _Granting()
        preview = SimulatedTrunk(self.config, self.clock, granting)
        preview.people = self.people
        preview._schedule(request)
        course: list[tuple] = []
        while preview._queue:
            at, order, token, kind, extra = heapq.heappop(preview._queue)
            keys = len(granting.keys)
            preview._fire(at, token, kind, extra, [])
            if kind == "answered":
                course.append((at, order, token, kind, {}))
            elif kind == "ended":
                course.append((at, order, token, kind, {"result": extra}))
            course += [(at, order, token, "key", key) for key in granting.keys[keys:]]
        return course

    def _line(self, request: CallRequest, resumed: bool = False, thanked: bool = False) -> list[tuple]:
        """What the line does first: the call ends unanswered, or it is answered (by a machine, or by the person,
        whose call then goes on as its conversation says). (at, order, token, kind, extra) for the event heap."""
        draws = _Draws(self.config.seed, request.number, request.week, request.attempt_number)
        behaviour = self.behaviour(request, draws)
        start = request.placed_at

        def event(seconds: float, kind: str, extra=None) -> tuple:
            return (start + timedelta(seconds=seconds), next(self._order), request.token, kind, extra)

        if behaviour == "invalid":
            return [event(draws.uniform(0.5, 2), "ended", LineResult.INVALID_NUMBER)]
        if behaviour == "busy":
            return [event(draws.uniform(2, 5), "ended", LineResult.BUSY)]
        if behaviour == "congestion":
            return [event(draws.uniform(1, 4), "ended", LineResult.FAILED)]
        ring = self.people.ring_seconds(request.number, request.week, draws) if self.people else draws.uniform(4, 20)
        if behaviour == "no_answer" or ring >= request.ring_timeout:
            return [event(request.ring_timeout, "ended", LineResult.NO_ANSWER)]
        if behaviour == "machine":  # answering-machine detection: no IVR is played to it
            return [
                event(ring, "answered"),
                event(min(ring + request.max_call_seconds, ring + draws.uniform(20, 40)), "ended", LineResult.MACHINE),
            ]
        call = _Call(
            request,
            behaviour,
            draws,
            request.flow,
            start + timedelta(seconds=ring + request.max_call_seconds),
            resumed,
            thanked,
        )
        return [event(ring, "answered", call)]

    def _fire(self, at: datetime, token: str, kind: str, extra, events: list[CallEvent]) -> bool:
        """One scheduled event at its moment; True if it ended a call (a channel is free)."""
        if kind == "reply":
            call, reply = extra
            self._carry_out(call, at, call.conversation.handle(reply))
            return False
        if kind == "answered":
            events.append(CallEvent(token, kind, at))
            if extra is not None:
                call = extra
                call.conversation.office_open = call.request.flow.office_open(at)
                call.conversation.handle(ANSWERED)  # a placed call: claim its one IVR session
                self._carry_out(call, at, call.conversation.handle(CLAIMED if self._claim(call, at) else CLAIM_REFUSED))
            return False
        if token not in self._active:
            return False  # ended before (a conversation that hung up early)
        self._active.discard(token)
        events.append(CallEvent(token, kind, at, extra))
        return True

    def _claim(self, call: _Call, at: datetime) -> bool:
        token = call.request.token
        if self.sink.start_ivr(token, at):
            return True
        # A call this switch carried on after a dialer's restart keeps the IVR session it had begun before.
        live = self.sink.live_call(token) if call.resumed else None
        return live is not None and live.ivr_started

    def _carry_out(self, call: _Call, at: datetime, actions: tuple) -> None:
        """Render the conversation's actions at moment `at` as the switch would, scheduling what follows."""
        token = call.request.token
        for action in actions:
            kind = type(action)
            if kind is Ask:
                self._reply(call, at, action)
            elif kind is Store:
                self._carry_out(call, at, call.conversation.handle(self._store(call, at, action)))
            elif kind is Closing:
                if action.outcome and not call.thanked:
                    # Stored, then thanked: the switch's log keeps only keys the person heard thanks for.
                    self._log(self.keys_log, {"token": token, "thanked": call.digit, "pid": os.getpid()})
                at = at + timedelta(seconds=speaking_seconds(action.text))
            elif kind is HangUp:
                self._push(min(call.cutoff, at), token, "ended", LineResult.ANSWERED)
            elif kind is NoteSpeech:
                self.sink.note_speech(token, action.text, action.confidence)
            elif kind is Play:
                at = at + timedelta(seconds=speaking_seconds(action.text))
            elif kind is Transfer:  # the simulated switch has no duty officer: the phone rings out
                self._push(
                    min(call.cutoff, at + timedelta(seconds=action.ring_seconds)),
                    token,
                    "reply",
                    (call, SIMULATED_TRANSFER),
                )
            elif kind is RecordMessage:  # nor a voice to record: the person hangs up after the beep, leaving none
                self._push(
                    min(call.cutoff, at + timedelta(seconds=call.draws.uniform(2, 8))),
                    token,
                    "reply",
                    (call, NO_MESSAGE),
                )
            elif kind is NoteTransfer:
                self.sink.record_transfer(token, action.result, at, action.connected_seconds)
            elif kind is KeepMessage:
                self.sink.record_message(token, action.ref, action.seconds, at)

    def _store(self, call: _Call, at: datetime, store: Store) -> Stored:
        call.digit = store.digit
        if call.thanked:  # stored and thanked before the dialer's restart: the switch does not press it again
            return STORED
        try:
            stored = self.sink.record_keypress(
                call.request.token, store.digit, store.outcome, at, speech=store.speech, risk=store.risk
            )
        except SafeCallError as exc:  # e.g. a locked or full database (anything else is the process's end)
            log.warning("could not store the answer (%s); hanging up without thanks so the attempt is retried", exc)
            stored = False
        return STORED if stored else STORE_FAILED

    def _reply(self, call: _Call, at: datetime, ask: Ask) -> None:
        """The person's reply to `ask`, scheduled at its moment (or the line cut at the call's longest length)."""
        talk = speaking_seconds(ask.text)
        behaviour, token = call.behaviour, call.request.token
        if behaviour == "hangup":
            self._push(
                min(call.cutoff, at + timedelta(seconds=call.draws.uniform(1, talk))),
                token,
                "ended",
                LineResult.ANSWERED,
            )
            return
        reply: Pressed | Said | NoInput
        if behaviour in ("ack", "help"):
            reply, seconds = PRESSED[behaviour], talk + call.draws.uniform(0.5, 3)
        elif behaviour.startswith("say:"):
            reply, seconds = spoken(behaviour) if ask.speech else NO_INPUT, talk + (2 if ask.speech else ask.timeout)
        else:
            reply, seconds = NO_INPUT, talk + ask.timeout
        when = at + timedelta(seconds=seconds)
        if when >= call.cutoff:
            self._push(call.cutoff, token, "ended", LineResult.ANSWERED)
        else:
            self._push(when, token, "reply", (call, reply))

    def _push(self, at: datetime, token: str, kind: str, extra) -> None:
        heapq.heappush(self._queue, (at, next(self._order), token, kind, extra))

    def ready(self) -> bool:
        return True

    def originate(self, request: CallRequest) -> None:
        if len(self._active) >= self.capacity.channels:
            raise TrunkError(f"all {self.capacity.channels} channels are in use")
        self.placed.append(request)
        self._log(
            self.placed_log,
            {"token": request.token, "number": request.number, "attempt": request.attempt_number, "pid": os.getpid()},
        )
        self._schedule(request)

    @staticmethod
    def _log(path: Path | None, entry: dict) -> None:
        """The switch's own record (drills): calls placed, and keypresses the person was thanked for."""
        if not path:
            return
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, (json.dumps(entry) + "\n").encode())  # one small O_APPEND write: whole or not at all
        finally:
            os.close(descriptor)

    def _schedule(self, request: CallRequest, resumed: bool = False, thanked: bool = False) -> None:
        self._active.add(request.token)
        for pending in self._line(request, resumed, thanked):
            heapq.heappush(self._queue, pending)

    def wait_events(self, until: datetime) -> list[CallEvent]:
        """Events up to the next call's end (it frees a channel) or `until`; answers reach the sink at their moment.

        An answer alone does not wake the dialer: it has nothing to do until the call ends.
        """
        events: list[CallEvent] = []
        queue = self._queue
        while queue and queue[0][0] <= until:
            self.clock.sleep_until(queue[0][0])
            now, ended = self.clock.now(), False
            while queue and queue[0][0] <= now:
                at, _, token, kind, extra = heapq.heappop(queue)
                ended = self._fire(at, token, kind, extra, events) or ended
            if ended:
                return events
        self.clock.sleep_until(until)
        return events

    def recover(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        """Only a call that was really placed goes on (its course is derivable); any other never happened.

        The placed log stands for the switch's own memory, which outlives a crashed dialer. A key the person
        was already thanked for is not pressed again: if the crashed dialer lost it, it stays lost (and the
        drill says so). Without the log a trunk knows only the calls it carries itself.
        """
        if request.token in self._active:
            return []  # this trunk is still carrying the call
        placed, thanked = self._switch_record()
        if request.token not in placed:
            return [CallEvent(request.token, "ended", self.clock.now(), LineResult.UNKNOWN, "never placed")]
        self._schedule(request, resumed=True, thanked=request.token in thanked)
        return []

    def _switch_record(self) -> tuple[set[str], set[str]]:
        """Tokens of the calls placed, and of the keys thanked, in the logs when this trunk first recovered."""
        if self._record is None:
            self._record = (read_log_tokens(self.placed_log), read_log_tokens(self.keys_log))
        return self._record

    def reconcile(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        return []  # every simulated call reports its end

    def close(self) -> None:
        self._queue.clear()
        self._active.clear()


def read_log_tokens(path: Path | None) -> set[str]:
    """The tokens in a switch log; a line cut short by a crash was not written (that call was not placed)."""
    tokens = set()
    if path and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                tokens.add(json.loads(line)["token"])
            except (ValueError, KeyError):
                continue
    return tokens


def _build(config: SimulatedTrunkConfig, *, clock: Clock, sink: CallSink, environ, root: Path) -> SimulatedTrunk:
    return SimulatedTrunk(config, clock, sink, placed_log=root / config.placed_log if config.placed_log else None)


def _check(config: SimulatedTrunkConfig, *, environ, flow, wait_seconds: float = 10) -> list[Check]:
    return [
        Check(
            Message(N_("simulated trunk")),
            True,
            Message(
                N_("{channels} channels, {rate} calls/s; no outside system to reach"),
                channels=config.channels,
                rate=config.calls_per_second,
            ),
        )
    ]


KIND = TrunkKind(SimulatedTrunkConfig, _build, _check)
