"""The ASGI app Twilio calls: the IVR flow as TwiML, status callbacks and call-backs. Every request must be signed.

Signatures are checked against the configured public URL, so this works behind
a reverse proxy that forwards https://public/... to http://127.0.0.1:PORT/...

A signature proves Twilio sent a request, not which call it is about: a voice or
keypress webhook counts only when its CallSid is the call placed for the attempt
(or, for a call-back, the call that opened it). The database is reached in
worker threads and waited for at most `sink_timeout` seconds, below Twilio's 15 s
limit: a locked database stalls no other request, and a caller whose answer could
not be stored hears an apology and is called again. The call's rules are its conversation's
(safecall.conversation); this module renders its actions as TwiML, the conversation's state carried across
webhooks in the signed <Gather> URL.

The routes are an APIRouter; what they need (the sink, the clock, the signature validator, how prompts sound) is a
`WebhookState` on `app.state.webhooks`, set by `create_webhook_app`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from safecall import speech
from safecall.conversation import (
    ANSWERED,
    NO_INPUT,
    WAIT_MESSAGE,
    WAIT_REPLY,
    WAIT_TRANSFER,
    Ask,
    Claim,
    Claimed,
    Closing,
    Conversation,
    End,
    Event,
    HangUp,
    KeepMessage,
    MessageRecorded,
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
from safecall.errors import TrunkError
from safecall.events import uvicorn_log_config
from safecall.phones import mask, mask_text
from safecall.telephony.base import CallEvent, CallSink, LineResult, LiveCall
from safecall.telephony.twilio.refs import twilio_ref

log = logging.getLogger("safecall.twilio")
FINAL_STATUS = {
    "completed": LineResult.ANSWERED,
    "busy": LineResult.BUSY,
    "no-answer": LineResult.NO_ANSWER,
    "failed": LineResult.FAILED,
    "canceled": LineResult.FAILED,
}
INVALID_NUMBER_SIP = {"404", "484"}  # not found, address incomplete: the number does not exist
SINK_TIMEOUT = 10.0  # seconds a webhook waits for the database: well below Twilio's 15 s webhook limit
CALL_ID_WAIT = 5.0  # how long a voice webhook waits for the trunk to note the CallSid it was given
KOREAN = "ko-KR"
APOLOGY = "죄송합니다. 지금은 응답을 기록하지 못했습니다. 잠시 후 다시 전화드리겠습니다."
NOT_DUE = "안심콜에 전화 주셔서 감사합니다. 지금은 확인해 드릴 안부 전화가 없습니다."
CONNECTING = "담당 부서로 연결해 드리겠습니다."
# SSML prosody per person (roster column 음성): slower, or louder and a little slower.
PROSODY = {"normal": {}, "slow": {"rate": "80%"}, "loud": {"volume": "x-loud", "rate": "90%"}}


def final_result(call_status: str, answered_by: str | None, sip_response_code: str | None = None) -> str | None:
    """The line result of a final CallStatus; None while the call goes on."""
    result = FINAL_STATUS.get(call_status)
    if result == LineResult.ANSWERED and answered_by and answered_by.startswith(("machine", "fax")):
        return LineResult.MACHINE
    if result not in (None, LineResult.ANSWERED) and sip_response_code in INVALID_NUMBER_SIP:
        return LineResult.INVALID_NUMBER
    return result


@dataclass(frozen=True)
class Speaking:
    """How prompts sound: an explicit voice (a wrong voice/language pair can make <Say> fail), the silence
    before the first words, or recorded prompts served from `prompt_base_url` instead of <Say>."""

    voice: str | None = "Google.ko-KR-Neural2-A"
    leading_pause: int = 1
    prompt_base_url: str | None = None


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="application/xml")


@dataclass
class WebhookState:
    """What the webhook routes need; `on_event` tells this process's dialer (if any) of a call report,
    after the report is recorded."""

    public_base_url: str
    validator: RequestValidator
    sink: CallSink
    now: Callable[[], datetime]
    on_event: Callable[[CallEvent], None]
    speaking: Speaking = Speaking()
    office_number: str | None = None
    sink_timeout: float = SINK_TIMEOUT
    call_id_wait: float = CALL_ID_WAIT
    inbound_calls: dict[str, str] = field(
        default_factory=dict
    )  # CallSid -> token of the call-backs this process answered

    async def in_thread(self, function: Callable, *args, **kwargs):
        """A sink call off the event loop, waited for at most `sink_timeout` (the thread itself finishes its work)."""
        return await asyncio.wait_for(
            run_in_threadpool(functools.partial(function, *args, **kwargs)), self.sink_timeout
        )


def create_webhook_app(
    *,
    public_base_url: str,
    auth_token: str,
    sink: CallSink,
    now: Callable[[], datetime],
    on_event: Callable[[CallEvent], None],
    speaking: Speaking = Speaking(),
    office_number: str | None = None,
    sink_timeout: float = SINK_TIMEOUT,
    call_id_wait: float = CALL_ID_WAIT,
) -> FastAPI:
    """`on_event` tells this process's dialer (if any) of a call report, after the report is recorded."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.webhooks = WebhookState(
        public_base_url,
        RequestValidator(auth_token),
        sink,
        now,
        on_event,
        speaking,
        office_number,
        sink_timeout,
        call_id_wait,
    )
    app.include_router(router)
    return app


# ---- dependencies ------------------------------------------------------------------------------
class Unsigned(Exception):
    """A request without Twilio's valid signature."""


async def state_of(request: Request) -> WebhookState:
    """Async, as every dependency here: a sync one runs in a worker thread, which can take seconds to get while the
    speech model loads at start, and an unsigned request would wait for it."""
    return request.app.state.webhooks


State = Annotated[WebhookState, Depends(state_of)]


async def signed_params(request: Request, hooks: State) -> dict[str, str]:
    """The request's form, if Twilio signed it for the public URL (behind the proxy); else Unsigned."""
    form = await request.form()
    params: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):  # Twilio posts no files
            raise Unsigned()
        params[key] = value
    url = hooks.public_base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not (signature and hooks.validator.validate(url, params, signature)):
        raise Unsigned()
    return params


Params = Annotated[dict[str, str], Depends(signed_params)]


class SignedRoute(APIRoute):
    """Refuse unsigned requests; a database too slow or failing gets an apology, never Twilio's English error."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Unsigned:
                return Response("invalid signature", status_code=403)
            except TimeoutError:
                log.warning(
                    "the database did not answer within %s s; apologising so the attempt is retried",
                    request.app.state.webhooks.sink_timeout,
                )
            except Exception as exc:
                log.error("webhook failed; apologising so the attempt is retried: %s", mask_text(repr(exc)))
            return apology(request.app.state.webhooks.speaking)

        return route


router = APIRouter(route_class=SignedRoute)


# ---- TwiML -------------------------------------------------------------------------------------
def say(speaking: Speaking, target, text: str, language: str = KOREAN, style: str = "normal") -> None:
    prosody = PROSODY.get(style) or {}
    if prosody:
        target.say(voice=speaking.voice, language=language).prosody(text, **prosody)
    else:
        target.say(text, voice=speaking.voice, language=language)


def speak(speaking: Speaking, target, call: LiveCall, name: str, text: str) -> None:
    if speaking.prompt_base_url:
        target.play(f"{speaking.prompt_base_url}/{name}.wav")
    else:
        say(speaking, target, text, call.flow.language, call.voice_style)


def lead(speaking: Speaking, response: VoiceResponse) -> VoiceResponse:
    if speaking.leading_pause:
        response.pause(length=speaking.leading_pause)
    return response


def gather_into(
    hooks: WebhookState, response: VoiceResponse, call: LiveCall, action: Ask, conversation: Conversation
) -> None:
    """<Gather> for the question; its action URL carries the conversation's state (Twilio signs the URL)."""
    speech = call.flow.speech if action.speech else None
    action_url = (
        f"{hooks.public_base_url}/twilio/gather/{call.token}?asked={conversation.asked}"
        + (f"&unclear={conversation.unclear}" if conversation.unclear else "")
        + ("&keys=1" if conversation.keys_only else "")
        + ("&inbound=1" if conversation.inbound else "")
    )
    listening = (
        dict(input="dtmf speech", language=call.flow.language, hints=speech.hints(), speech_timeout="auto")
        if speech
        else dict(input="dtmf")
    )
    gather = Gather(
        num_digits=1,
        timeout=int(action.timeout),
        method="POST",
        action=action_url,
        action_on_empty_result=True,
        **listening,
    )
    hint = f" {speech.prompt_hint}" if speech and speech.prompt_hint and not hooks.speaking.prompt_base_url else ""
    speak(hooks.speaking, gather, call, action.prompt, action.text + hint)
    response.append(gather)


def hang_up() -> Response:
    response = VoiceResponse()
    response.hangup()
    return twiml(response)


def apology(speaking: Speaking) -> Response:
    response = VoiceResponse()
    say(speaking, response, APOLOGY)
    response.hangup()
    return twiml(response)


# ---- the conversation --------------------------------------------------------------------------
async def converse(
    hooks: WebhookState, call: LiveCall, conversation: Conversation, event: Event, sid: str, *, first: bool = False
) -> Response:
    """The conversation's actions as TwiML, the sink's answers fed back, until it waits for the caller or is over."""
    sink, now, response = hooks.sink, hooks.now, VoiceResponse()
    actions = conversation.handle(event)
    while actions:
        reply: Event | None = None
        for action in actions:
            if isinstance(action, Claim):
                reply = Claimed(await hooks.in_thread(sink.start_ivr, call.token, now()))
            elif isinstance(action, Ask):
                if first:
                    lead(hooks.speaking, response)
                gather_into(hooks, response, call, action, conversation)
            elif isinstance(action, NoteSpeech):  # heard, but no answer: kept for the officer ("안 괜찮아요" matters)
                await hooks.in_thread(sink.note_speech, call.token, action.text, action.confidence)
            elif isinstance(action, Store):
                reply = Stored(await store(hooks, call, action))
            elif isinstance(action, Closing):
                speak(hooks.speaking, response, call, action.closing, action.text)
            elif isinstance(action, Play):
                speak(hooks.speaking, response, call, action.prompt, action.text)
            elif isinstance(action, Transfer):  # Twilio dials; <Dial action> reports what came of it (help_dial below)
                response.dial(
                    action.number,
                    timeout=action.ring_seconds,
                    method="POST",
                    action=help_url(hooks, "dial", call, conversation),
                )
            elif isinstance(action, RecordMessage):
                # The recording's status callback keeps the message too, whether or not Twilio requests the action
                # of a caller who hung up mid-message.
                response.record(
                    max_length=action.max_seconds,
                    play_beep=True,
                    finish_on_key="#",
                    timeout=10,
                    method="POST",
                    action=help_url(hooks, "message", call, conversation),
                    recording_status_callback=help_url(hooks, "recording", call, conversation),
                    recording_status_callback_method="POST",
                )
            elif isinstance(action, NoteTransfer):
                await keep(
                    hooks, hooks.sink.record_transfer, call.token, action.result, now(), action.connected_seconds
                )
            elif isinstance(action, KeepMessage):
                await keep(hooks, hooks.sink.record_message, call.token, action.ref, action.seconds, now())
            elif isinstance(
                action, End
            ):  # no dialer waits for a call-back: its end is recorded here (or by its status callback)
                await hooks.in_thread(
                    sink.record_events,
                    [CallEvent(call.token, "ended", now(), LineResult.ANSWERED, "call-back IVR done")],
                )
                hooks.inbound_calls.pop(sid, None)
            elif isinstance(action, HangUp):
                if action.unsaved:
                    say(hooks.speaking, response, APOLOGY)
                response.hangup()
        actions = conversation.handle(reply) if reply is not None else ()
    return twiml(response)


def help_url(hooks: WebhookState, step: str, call: LiveCall, conversation: Conversation) -> str:
    return f"{hooks.public_base_url}/twilio/help/{step}/{call.token}" + ("?inbound=1" if conversation.inbound else "")


def office_open(hooks: WebhookState, call: LiveCall) -> bool:
    return call.flow.office_open(hooks.now())


async def keep(hooks: WebhookState, write: Callable, *args) -> None:
    """A transfer's or a message's record: a failure is logged, never an apology (the help itself is stored)."""
    try:
        await hooks.in_thread(write, *args)
    except Exception as exc:
        log.error("could not keep what came of a call for help (its call-back task is there): %s", mask_text(repr(exc)))


async def store(hooks: WebhookState, call: LiveCall, action: Store) -> bool:
    try:
        return await hooks.in_thread(
            hooks.sink.record_keypress,
            call.token,
            action.digit,
            action.outcome,
            hooks.now(),
            speech=action.speech,
            risk=action.risk,
        )
    except TimeoutError:
        log.warning(
            "the database did not store the answer within %s s; apologising so the attempt is retried",
            hooks.sink_timeout,
        )
    except Exception as exc:
        log.error("could not store the answer; apologising so the attempt is retried: %s", mask_text(repr(exc)))
    return False


async def bound_call(
    hooks: WebhookState, token: str, params: dict[str, str], *, wait_for_id: bool = False
) -> LiveCall | None:
    """The open attempt under `token` if this request is about its call (the CallSid matches); else None.

    The voice webhook may outrun the trunk noting the CallSid that calls.create returned: it waits a little.
    """
    call = await hooks.in_thread(hooks.sink.live_call, token)
    deadline = time.monotonic() + (hooks.call_id_wait if wait_for_id else 0)
    while call is not None and call.call_id is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        call = await hooks.in_thread(hooks.sink.live_call, token)
    if call is None:
        return None
    if call.call_id is None or call.call_id != params.get("CallSid"):
        log.warning("refused a webhook for attempt %s: it is not about the attempt's call", call.attempt_id)
        return None
    return call


def call_events(now: Callable[[], datetime], token: str, params: dict[str, str]) -> list[CallEvent]:
    call_status = params.get("CallStatus", "")
    events = [CallEvent(token, "answered", now())] if call_status == "in-progress" else []
    result = final_result(call_status, params.get("AnsweredBy"), params.get("SipResponseCode"))
    if result:
        detail = f"CallStatus {call_status}" + (
            f", SIP {params['SipResponseCode']}" if params.get("SipResponseCode") else ""
        )
        events.append(CallEvent(token, "ended", now(), result, detail))
    return events


# ---- the routes --------------------------------------------------------------------------------
@router.post("/twilio/voice/{token}")
async def voice(token: str, params: Params, hooks: State) -> Response:
    call = await bound_call(hooks, token, params, wait_for_id=True)
    if call is None:
        return hang_up()
    if (params.get("AnsweredBy") or "").startswith(("machine", "fax")):
        return hang_up()  # never talk to a voicemail; the status callback says machine
    return await converse(
        hooks,
        call,
        Conversation(call.flow, listens=True, office_open=office_open(hooks, call)),
        ANSWERED,
        params["CallSid"],
        first=True,
    )


@router.post("/twilio/gather/{token}")
async def gather(request: Request, token: str, params: Params, hooks: State) -> Response:
    call = await bound_call(hooks, token, params)
    if call is None or not call.ivr_started:
        return hang_up()
    query = request.query_params
    try:
        asked, unclear = int(query.get("asked", "1")), int(query.get("unclear", "0"))
        confidence = float(params.get("Confidence") or 0)
    except ValueError:
        return hang_up()
    conversation = Conversation(
        call.flow,
        listens=True,
        inbound=query.get("inbound") == "1",
        asked=asked,
        unclear=unclear,
        keys_only=query.get("keys") == "1",
        waiting=WAIT_REPLY,
        office_open=office_open(hooks, call),
    )
    digits, spoken = params.get("Digits", ""), params.get("SpeechResult", "")
    event = Pressed(digits) if digits else Said(spoken, confidence) if spoken else NO_INPUT
    return await converse(hooks, call, conversation, event, params["CallSid"])


@router.post("/twilio/status/{token}")
async def status(token: str, params: Params, hooks: State) -> Response:
    events = call_events(hooks.now, token, params)
    if not events:
        return Response(status_code=204)

    def record() -> None:
        # Recorded here, durably, whichever process receives it (a `safecall serve` has no dialer).
        call = hooks.sink.live_call(token)
        if call is not None and call.call_id is not None and call.call_id != params.get("CallSid"):
            log.warning("ignored a status callback for attempt %s: not about the attempt's call", call.attempt_id)
            return
        hooks.sink.record_events(events)
        for event in events:
            hooks.on_event(event)

    try:
        await hooks.in_thread(record)  # on a timeout the thread still records and tells the dialer
    except TimeoutError:
        return Response("the database is busy", status_code=503)
    return Response(status_code=204)


@router.post("/twilio/incoming")
async def incoming(params: Params, hooks: State) -> Response:
    """A call to our number: a call-back from a person waiting for our call hears the IVR (caller ID can be forged)."""
    caller, sid = params.get("From", ""), params.get("CallSid", "")
    opened = (
        await hooks.in_thread(hooks.sink.open_inbound_call, caller, hooks.now())
        if caller.startswith("+") and sid
        else None
    )
    if opened is None:
        log.info("call-back from %s: nobody waiting for a call has this number", mask(caller))
        response = lead(hooks.speaking, VoiceResponse())
        say(hooks.speaking, response, NOT_DUE)
        if hooks.office_number:
            say(hooks.speaking, response, CONNECTING)
            response.dial(hooks.office_number)
        else:
            response.hangup()
        return twiml(response)
    await hooks.in_thread(hooks.sink.note_call_id, opened.token, sid)
    call = await hooks.in_thread(hooks.sink.live_call, opened.token) or opened
    hooks.inbound_calls[sid] = call.token
    return await converse(
        hooks,
        call,
        Conversation(call.flow, listens=True, inbound=True, office_open=office_open(hooks, call)),
        ANSWERED,
        sid,
        first=True,
    )


@router.post("/twilio/incoming/status")
async def incoming_status(params: Params, hooks: State) -> Response:
    """The number's status callback: a call-back that ended before its IVR did is recorded as ended."""
    token = hooks.inbound_calls.get(params.get("CallSid", ""))
    events = [e for e in call_events(hooks.now, token, params) if e.kind == "ended"] if token else []
    if events:
        await hooks.in_thread(hooks.sink.record_events, events)
        hooks.inbound_calls.pop(params["CallSid"], None)
    return Response(status_code=204)


async def help_step(
    request: Request, token: str, params: dict[str, str], hooks: WebhookState, waiting: int, event
) -> Response:
    """A transfer's or a message's callback: the call's conversation goes on from there. Twilio may call a <Record>
    action after the caller hung up, when the call may be closed already: the message is kept all the same (the
    signed URL names the attempt's token, which only Twilio was given)."""
    call = await bound_call(hooks, token, params)
    if call is None or not call.ivr_started:
        if waiting == WAIT_MESSAGE and event.ref:
            await keep(hooks, hooks.sink.record_message, token, event.ref, event.seconds, hooks.now())
        elif waiting == WAIT_TRANSFER:
            await keep(hooks, hooks.sink.record_transfer, token, event.result, hooks.now(), event.connected_seconds)
        return hang_up()
    conversation = Conversation(
        call.flow, listens=True, inbound=request.query_params.get("inbound") == "1", waiting=waiting
    )
    return await converse(hooks, call, conversation, event, params["CallSid"])


@router.post("/twilio/help/dial/{token}")
async def help_dial(request: Request, token: str, params: Params, hooks: State) -> Response:
    return await help_step(request, token, params, hooks, WAIT_TRANSFER, twilio_transfer_result(params))


@router.post("/twilio/help/message/{token}")
async def help_message(request: Request, token: str, params: Params, hooks: State) -> Response:
    return await help_step(request, token, params, hooks, WAIT_MESSAGE, twilio_message(params))


@router.post("/twilio/help/recording/{token}")
async def help_recording(token: str, params: Params, hooks: State) -> Response:
    """<Record>'s recordingStatusCallback: the message kept once Twilio has it (the call may be over by then)."""
    message = twilio_message(params)
    if params.get("RecordingStatus") == "completed" and message.ref:
        await keep(hooks, hooks.sink.record_message, token, message.ref, message.seconds, hooks.now())
    return Response(status_code=204)


@router.post("/twilio/fallback")
@router.post("/twilio/fallback/{token}")
async def fallback(params: Params, hooks: State) -> Response:
    """Twilio's fallback when a webhook failed: a Korean apology, no database;
    the call ends without a key and is retried."""
    log.warning("Twilio used the fallback URL (error %s)", params.get("ErrorCode", "?"))
    return apology(hooks.speaking)


class WebhookServer:
    """uvicorn in a thread, bound to the configured (trusted) address only."""

    def __init__(self, app, host: str, port: int):
        self.host, self.port = host, port
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                log_config=uvicorn_log_config(),
            )
        )
        self._thread = threading.Thread(target=self._server.run, name="twilio-webhooks", daemon=True)

    def start(self, timeout: float = 10) -> WebhookServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TrunkError(f"the webhook server could not listen on {self.host}:{self.port}")
            time.sleep(0.02)
        speech.warm_up()  # spoken answers are judged with a model that takes seconds to load: not at the first one
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


# ---- what Twilio says of a transfer (<Dial>) and of a message (<Record>): webhook data, checked, never trusted ----

# canceled: the person hung up while the officer's phone rang, which for the officer is a call not answered in time.
DIAL_CALL_STATUS = {
    "completed": "connected",
    "answered": "connected",
    "no-answer": "no_answer",
    "canceled": "no_answer",
    "busy": "busy",
}


def twilio_transfer_result(params: dict[str, str]) -> TransferResult:
    """<Dial action>'s callback: DialCallStatus (failed or anything unknown: failed) and DialCallDuration."""
    result = DIAL_CALL_STATUS.get(params.get("DialCallStatus", ""), "failed")
    duration = params.get("DialCallDuration", "")
    return TransferResult(result, float(duration) if result == "connected" and duration.isdigit() else None)


def twilio_message(params: dict[str, str]) -> MessageRecorded:
    """<Record action>'s callback: the recording by its ids (fetched later from the configured API only), its length."""
    ref = twilio_ref(params.get("AccountSid", ""), params.get("RecordingSid", ""))
    duration = params.get("RecordingDuration", "")
    seconds = float(duration) if duration.isdigit() else 0.0
    return MessageRecorded(ref if seconds > 0 else None, seconds)
