"""The Asterisk trunk: AMI Originate (Async) out, OriginateResponse and Hangup events back, IVR over FastAGI."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import phonenumbers
from asterisk.ami import SimpleAction

from safecall import phones
from safecall.clock import Clock
from safecall.errors import TrunkError
from safecall.telephony.asterisk.ami import AmiConnection
from safecall.telephony.asterisk.channels import ChannelWatch, channel_id_for, peer_addresses
from safecall.telephony.asterisk.config import AsteriskTrunkConfig
from safecall.telephony.asterisk.fastagi import FastAgiServer, IvrSessions
from safecall.telephony.base import CallEvent, CallRequest, CallSink, Capacity, LineResult

log = logging.getLogger("safecall.asterisk")

# OriginateResponse Reason codes (README of the recordings): 0 failed, 1 hung up before answer,
# 3 ring timeout, 4 answered, 5 busy, 8 congestion.
REASON_RESULT = {
    0: LineResult.FAILED,
    1: LineResult.NO_ANSWER,
    3: LineResult.NO_ANSWER,
    5: LineResult.BUSY,
    8: LineResult.FAILED,
}
# Q.850 hangup causes that say more than the Reason: 1 unallocated number, 28 invalid format, 17 busy...
CAUSE_RESULT = {
    1: LineResult.INVALID_NUMBER,
    28: LineResult.INVALID_NUMBER,
    17: LineResult.BUSY,
    18: LineResult.NO_ANSWER,
    19: LineResult.NO_ANSWER,
    21: LineResult.BUSY,
    34: LineResult.FAILED,
    38: LineResult.FAILED,
    41: LineResult.FAILED,
    42: LineResult.FAILED,
}
ANSWERED = 4
ORIGINATE_SETTLE_SECONDS = 1.0  # an async Originate has its channel well within this


def failure_result(reason: int | None, cause: int | None) -> str:
    if cause in CAUSE_RESULT and CAUSE_RESULT[cause] in (LineResult.INVALID_NUMBER, LineResult.BUSY):
        return CAUSE_RESULT[cause]
    if reason in REASON_RESULT:
        return REASON_RESULT[reason]
    return CAUSE_RESULT.get(cause, LineResult.FAILED) if cause is not None else LineResult.FAILED


def dial_number(e164: str, number_format: str) -> str:
    if number_format == "e164":
        return e164
    national = phonenumbers.format_number(phonenumbers.parse(e164, None), phonenumbers.PhoneNumberFormat.NATIONAL)
    return "".join(c for c in national if c.isdigit())


class _Call:
    def __init__(self, token: str, originated_at: datetime):
        self.token = token
        self.originated_at = originated_at
        self.channel_seen = False
        self.answered = False
        self.reason: int | None = None
        self.cause: int | None = None


class AsteriskTrunk:
    def __init__(
        self,
        config: AsteriskTrunkConfig,
        clock: Clock,
        sink: CallSink,
        environ: Mapping[str, str],
        connect: bool = True,
        sounds: Path | None = None,
    ):
        """`sounds`: SafeCall's copy of the prompt folder (`ivr prompts` writes it), for the recorded voice variants."""
        self.config = config
        self.capacity = Capacity(config.channels, config.calls_per_second)
        self.clock = clock
        self._events: queue.Queue[CallEvent] = queue.Queue()
        self._calls: dict[str, _Call] = {}
        self._lock = threading.Lock()
        self._second_pass: threading.Timer | None = None
        self.channels = ChannelWatch()
        self.sessions = IvrSessions(
            sink,
            clock.now,
            self.channels,
            prompt_dir=config.prompt_dir,
            answer_wait_seconds=config.answer_wait_seconds,
            office_dial=config.office_dial,
            sounds=sounds,
            help_dial=lambda number: (
                config.help_dial or config.channel.format(number=dial_number(number, config.number_format))
            ),
            message_dir=config.message_dir,
        )
        pbx = peer_addresses(config.pbx_host())
        host, port = config.fastagi_address()
        try:
            self.fastagi = FastAgiServer(host, port, self.sessions, pbx_addresses=pbx).start()
        except OSError as exc:  # e.g. the port is taken: another SafeCall process serves this trunk already
            raise TrunkError(
                f"the FastAGI server cannot listen on {host}:{port}: {exc.strerror}; "
                "is another SafeCall process (scheduler, worker or serve) running this trunk?"
            ) from exc
        self.ami = AmiConnection(
            config.ami_host,
            config.ami_port,
            config.ami_username,
            config.ami_secret.resolve(environ),
            on_event=self._on_event,
            on_reconnect=self.resync,
            ping_interval=config.ping_interval_seconds,
        )
        if connect:
            try:
                self.ami.connect()
            except TrunkError:
                self.fastagi.stop()
                raise

    # ---- placing calls ----
    def ready(self) -> bool:
        return self.ami.is_up()

    def originate(self, request: CallRequest) -> None:
        channel_id = channel_id_for(request.token)
        ring = (
            request.ring_timeout
            if self.config.ring_timeout_seconds is None
            else min(request.ring_timeout, self.config.ring_timeout_seconds)
        )
        action = SimpleAction(
            "Originate",
            Channel=self.config.channel.format(number=dial_number(request.number, self.config.number_format)),
            Context=self.config.context,
            Exten="s",
            Priority=1,
            Timeout=int(ring * 1000),
            CallerID=self.config.caller_id,
            Async="true",
            ChannelId=channel_id,
        )
        action.variables = {"SAFECALL_ATTEMPT": request.token}
        with self._lock:
            self._calls[channel_id] = _Call(request.token, self.clock.now())
        response = self.ami.send(action)
        if response.is_error():
            with self._lock:
                self._calls.pop(channel_id, None)
            raise TrunkError(f"Asterisk refused the Originate: {response.keys.get('Message', '')}")
        log.info("originated %s to %s", channel_id, phones.mask(request.number))

    # ---- what Asterisk tells us ----
    def _on_event(self, event) -> None:
        keys = event.keys
        self.channels.on_event(event.name, keys)
        uid = keys.get("Uniqueid", "")
        with self._lock:
            call = self._calls.get(uid)
            if call is None:
                return
            if event.name == "Newchannel":
                call.channel_seen = True
            elif event.name == "OriginateResponse":
                call.reason = _int(keys.get("Reason"))
                if call.reason == ANSWERED:
                    call.answered = True
                    self._events.put(CallEvent(call.token, "answered", self.clock.now()))
                elif not call.channel_seen or call.cause is not None:
                    self._end(uid, failure_result(call.reason, call.cause))
            elif event.name == "Hangup":
                call.cause = _int(keys.get("Cause"))
                if call.answered:
                    self._end(uid, LineResult.ANSWERED, f"cause {call.cause}")
                elif call.reason is not None:
                    self._end(uid, failure_result(call.reason, call.cause), f"cause {call.cause}")

    def _end(self, uid: str, result: str, detail: str = "") -> None:
        call = self._calls.pop(uid)
        self._events.put(CallEvent(call.token, "ended", self.clock.now(), result, detail))

    def wait_events(self, until: datetime) -> list[CallEvent]:
        timeout = max(0.0, (until - self.clock.now()).total_seconds())
        events = []
        try:
            events.append(self._events.get(timeout=timeout))
        except queue.Empty:
            return events
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    # ---- after restarts and reconnects ----
    def active_channel_ids(self) -> set[str]:
        known = self.channels.known()
        channels = self.ami.send_list(SimpleAction("CoreShowChannels"), "CoreShowChannelsComplete")
        for event in channels:  # after a restart or a reconnect, the calls that are up are known again
            self.channels.on_event(event.name, event.keys)
        active = {event.keys.get("Uniqueid", "") for event in channels}
        self.channels.forget(known - active)  # their Hangup was lost
        return active

    def recover(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        channel_id = channel_id_for(request.token)
        with self._lock:
            call = self._calls[channel_id] = _Call(request.token, self.clock.now())
            call.channel_seen = True
        if channel_id in self.active_channel_ids():
            with self._lock:
                call.answered = True  # still up; its Hangup will close it, and any keypress is already stored
            return []
        with self._lock:
            self._calls.pop(channel_id, None)
        return [CallEvent(request.token, "ended", self.clock.now(), LineResult.UNKNOWN, "gone before restart")]

    def reconcile(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        channel_id = channel_id_for(request.token)
        if channel_id in self.active_channel_ids():
            return []
        with self._lock:
            self._calls.pop(channel_id, None)
        return [CallEvent(request.token, "ended", self.clock.now(), LineResult.UNKNOWN, "no Hangup seen")]

    def resync(self, again_after: float | None = 2.0) -> None:
        """After a reconnect events may have been lost: calls Asterisk no longer has are ended as unknown.

        A second pass a little later catches calls that ended while the link was coming back.
        """
        if again_after is not None:
            self._second_pass = threading.Timer(again_after, self._resync_quietly)
            self._second_pass.daemon = True
            self._second_pass.start()
        asked_at = self.clock.now()
        active = self.active_channel_ids()
        with self._lock:
            for uid in [uid for uid in self._calls if uid not in active]:
                call = self._calls[uid]
                # A call never seen at all may simply not have its channel yet (Originate is async); one placed
                # well before the question whose every event was lost while the link was down is gone too.
                settled = (asked_at - call.originated_at).total_seconds() >= ORIGINATE_SETTLE_SECONDS
                if call.channel_seen or call.answered or call.reason is not None or settled:
                    self._end(uid, LineResult.UNKNOWN, "lost while the AMI link was down")

    def _resync_quietly(self) -> None:
        try:
            self.resync(again_after=None)
        except TrunkError as exc:
            log.warning("second resync failed: %s", exc)

    def close(self) -> None:
        if self._second_pass is not None:
            self._second_pass.cancel()
        self.ami.close()
        self.fastagi.stop()


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
