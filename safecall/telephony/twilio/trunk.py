"""The Twilio trunk: calls created with the twilio SDK, each with its own IVR and status-callback URLs."""

from __future__ import annotations

import logging
import queue
from collections.abc import Mapping
from datetime import datetime, timedelta

from twilio.base.exceptions import TwilioException, TwilioRestException

from safecall import phones
from safecall.clock import Clock, real_seconds_until
from safecall.errors import TrunkError, TrunkFatalError
from safecall.telephony.base import CallEvent, CallRequest, CallSink, Capacity, LineResult, TrunkBusy
from safecall.telephony.twilio.client import make_client
from safecall.telephony.twilio.config import TwilioTrunkConfig
from safecall.telephony.twilio.webhooks import Speaking, WebhookServer, create_webhook_app, final_result

log = logging.getLogger("safecall.twilio")
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # it logs request headers

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
INVALID_NUMBER_CODES = {21211, 21214, 21217, 13223, 13224}  # not a valid, or not a reachable, number
FATAL_CODES = {20003, 20005, 21210, 21212, 21215}  # credentials, caller ID or geo permission: no call can go
PER_NUMBER_CODES = {21216}  # this one destination is blocked: that person's attempt fails, the campaign goes on


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the delta form Twilio sends); None if absent or not a number."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def said(exc: TwilioRestException) -> str:
    """Twilio's error text, fit for logs and the database: its messages quote the number called."""
    return phones.mask_text(f"{exc.msg} (code {exc.code})")


class TwilioTrunk:
    def __init__(self, config: TwilioTrunkConfig, clock: Clock, sink: CallSink, environ: Mapping[str, str]):
        self.config = config
        self.capacity = Capacity(config.channels, config.calls_per_second)
        self.clock, self.sink = clock, sink
        auth_token = config.auth_token.resolve(environ)
        self.client = make_client(config, auth_token)
        self._events: queue.Queue[CallEvent] = queue.Queue()
        self._known_sids: set[str] = set()
        # Attempts whose create may have made a call nobody heard of (a 5xx, a broken connection): token -> when
        # first tried. Before trying one again, Twilio is asked whether the call exists, so nobody is called twice.
        self._uncertain: dict[str, datetime] = {}
        speaking = Speaking(config.voice, config.leading_pause_seconds, config.prompt_base_url)
        app = create_webhook_app(
            public_base_url=config.public_base_url,
            auth_token=auth_token,
            sink=sink,
            now=clock.now,
            on_event=self._events.put,
            speaking=speaking,
            office_number=config.office_number,
        )
        host, port = config.listen_address()
        self.webhooks = WebhookServer(app, host, port).start()

    def _url(self, kind: str, token: str) -> str:
        return f"{self.config.public_base_url}/twilio/{kind}/{token}"

    def ready(self) -> bool:
        return True

    def originate(self, request: CallRequest) -> None:
        params = dict(
            to=request.number,
            from_=self.config.from_number,
            url=self._url("voice", request.token),
            method="POST",
            status_callback=self._url("status", request.token),
            status_callback_event=STATUS_EVENTS,
            status_callback_method="POST",
            timeout=int(min(request.ring_timeout, self.config.ring_timeout_seconds)),
            time_limit=int(request.max_call_seconds),
            # If a webhook fails: a Korean apology instead of Twilio's English error; the call is retried.
            fallback_url=self.config.fallback_url or self._url("fallback", request.token),
            fallback_method="POST",
        )
        if self.config.machine_detection:
            params["machine_detection"] = "Enable"
        since = self._uncertain.get(request.token)
        try:
            call = (self._find_created(request, since) if since else None) or self._create(request, params)
        except TrunkBusy:
            raise  # the attempt comes back; what is uncertain about it is kept
        except TrunkError:
            self._uncertain.pop(request.token, None)
            raise
        self._uncertain.pop(request.token, None)
        self._known_sids.add(call.sid)
        self.sink.note_call_id(request.token, call.sid)
        log.info("created call %s to %s", call.sid, phones.mask(request.number))

    def _create(self, request: CallRequest, params: dict):
        """One request to create the call: the call, or TrunkBusy (try again later), or TrunkError. Never waits."""
        try:
            return self.client.calls.create(**params)
        except TwilioRestException as exc:
            if exc.code in INVALID_NUMBER_CODES:
                raise TrunkError(f"Twilio: {said(exc)}", result=LineResult.INVALID_NUMBER) from exc
            if exc.code in PER_NUMBER_CODES:
                raise TrunkError(f"Twilio will not call this number: {said(exc)}", result=LineResult.FAILED) from exc
            if exc.code in FATAL_CODES or exc.status in (401, 403):
                raise TrunkFatalError(
                    f"Twilio refused every call: {said(exc)}; check the account, from number and geo permissions"
                ) from exc
            if exc.status != 429 and exc.status < 500:
                raise TrunkError(f"Twilio: {said(exc)}") from exc
            # 429 was refused before anything was made; after a 5xx the call may exist: look before trying again.
            if exc.status >= 500:
                call = self._find_created(request)
                if call:
                    return call
                self._uncertain.setdefault(request.token, request.placed_at)
            wait = retry_after_seconds(self.client.http_client.retry_after) if exc.status == 429 else None
            raise TrunkBusy(f"Twilio answered {exc.status}: {said(exc)}", retry_after=wait) from exc
        except TwilioException as exc:  # the connection broke: the call may exist
            call = self._find_created(request)
            if call:
                return call
            self._uncertain.setdefault(request.token, request.placed_at)
            raise TrunkBusy(f"Twilio API unreachable: {phones.mask_text(str(exc))}") from exc

    def _find_created(self, request: CallRequest, since: datetime | None = None):
        """A call to this number from our number since the attempt was (first) placed that no other attempt owns."""
        try:
            calls = self.client.calls.list(
                to=request.number,
                from_=self.config.from_number,
                start_time_after=(since or request.placed_at) - timedelta(minutes=1),
                limit=20,
            )
        except TwilioException as exc:
            raise TrunkError(
                f"cannot tell whether Twilio created the call ({phones.mask_text(str(exc))}); not dialling again"
            ) from exc
        return next((c for c in calls if c.sid not in self._known_sids), None)

    def wait_events(self, until: datetime) -> list[CallEvent]:
        timeout = real_seconds_until(self.clock, until)
        events = []
        try:
            events.append(self._events.get(timeout=timeout))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            return events

    def _status_of(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        try:
            call = self.client.calls(call_id).fetch() if call_id else self._find_created(request)
        except TwilioRestException as exc:
            if exc.status == 404:  # Twilio has no such call: settled as unknown, and the person is called again
                return [
                    CallEvent(
                        request.token, "ended", self.clock.now(), LineResult.UNKNOWN, f"Twilio has no call {call_id}"
                    )
                ]
            raise TrunkError(f"cannot fetch call {call_id}: {said(exc)}") from exc
        except TwilioException as exc:
            raise TrunkError(f"cannot fetch call {call_id}: {phones.mask_text(str(exc))}") from exc
        if call is None:
            return [CallEvent(request.token, "ended", self.clock.now(), LineResult.UNKNOWN, "Twilio has no such call")]
        self._known_sids.add(call.sid)
        result = final_result(call.status, getattr(call, "answered_by", None))
        return (
            [CallEvent(request.token, "ended", self.clock.now(), result, f"fetched status {call.status}")]
            if result
            else []
        )

    def recover(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        return self._status_of(request, call_id)

    def reconcile(self, request: CallRequest, call_id: str | None) -> list[CallEvent]:
        return self._status_of(request, call_id)

    def close(self) -> None:
        self.webhooks.stop()
