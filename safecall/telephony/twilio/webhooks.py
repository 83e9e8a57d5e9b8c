"""The ASGI app Twilio calls: the IVR flow as TwiML, and status callbacks. Every request must carry a valid signature.

Signatures are checked against the configured public URL, so this works behind
a reverse proxy that forwards https://public/... to http://127.0.0.1:PORT/...
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from safecall.errors import TrunkError
from starlette.concurrency import run_in_threadpool

from safecall.ivr import Ask, Finish, IvrFlow, IvrState, NoInput, Pressed, Start, step
from safecall.telephony.base import CallEvent, CallSink, LineResult, LiveCall

log = logging.getLogger("safecall.twilio")
FINAL_STATUS = {"completed": LineResult.ANSWERED, "busy": LineResult.BUSY, "no-answer": LineResult.NO_ANSWER,
                "failed": LineResult.FAILED, "canceled": LineResult.FAILED}


def final_result(call_status: str, answered_by: str | None) -> str | None:
    """The line result of a final CallStatus; None while the call goes on."""
    result = FINAL_STATUS.get(call_status)
    if result == LineResult.ANSWERED and answered_by and answered_by.startswith(("machine", "fax")):
        return LineResult.MACHINE
    return result


def twiml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="application/xml")


def create_webhook_app(*, public_base_url: str, auth_token: str, sink: CallSink,
                       now: Callable[[], datetime], on_event: Callable[[CallEvent], None],
                       prompt_base_url: str | None = None) -> Starlette:
    """`sink` is called off the event loop (a worker thread): a slow database never stalls other requests.

    `on_event` tells this process's dialer (if any) of a call report, after the report is recorded.
    """
    validator = RequestValidator(auth_token)

    async def signed_params(request: Request) -> dict[str, str] | None:
        form = await request.form()
        params = {key: value for key, value in form.multi_items()}
        url = public_base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        return params if signature and validator.validate(url, params, signature) else None

    def speak(target, flow: IvrFlow, name: str, text: str) -> None:
        if prompt_base_url:
            target.play(f"{prompt_base_url}/{name}.wav")
        else:
            target.say(text, language=flow.language)

    def ask(token: str, flow: IvrFlow, action: Ask, asked: int) -> Response:
        response = VoiceResponse()
        gather = Gather(num_digits=1, input="dtmf", timeout=int(action.timeout), method="POST",
                        action=f"{public_base_url}/twilio/gather/{token}?asked={asked}", action_on_empty_result=True)
        speak(gather, flow, action.prompt, action.text)
        response.append(gather)
        return twiml(response)

    def hang_up() -> Response:
        response = VoiceResponse()
        response.hangup()
        return twiml(response)

    async def finish(token: str, flow: IvrFlow, action: Finish) -> Response:
        if action.outcome:
            try:
                if not await run_in_threadpool(sink.record_keypress, token, action.digit, action.outcome, now()):
                    return hang_up()
            except Exception:
                log.exception("could not store the keypress; hanging up without thanks so the attempt is retried")
                return hang_up()
        response = VoiceResponse()
        speak(response, flow, action.closing, action.text)
        response.hangup()
        return twiml(response)

    async def live_call(request: Request) -> tuple[dict[str, str], LiveCall] | Response:
        """The signed parameters and the open attempt, or the response that ends the request."""
        params = await signed_params(request)
        if params is None:
            return Response("invalid signature", status_code=403)
        call = await run_in_threadpool(sink.live_call, request.path_params["token"])
        return (params, call) if call is not None else hang_up()

    async def voice(request: Request) -> Response:
        checked = await live_call(request)
        if isinstance(checked, Response):
            return checked
        params, call = checked
        if (params.get("AnsweredBy") or "").startswith(("machine", "fax")):
            return hang_up()  # never talk to a voicemail; the status callback says machine
        state, action = step(call.flow, IvrState(), Start())
        return ask(call.token, call.flow, action, state.asked)

    async def gather(request: Request) -> Response:
        checked = await live_call(request)
        if isinstance(checked, Response):
            return checked
        params, call = checked
        token, flow = call.token, call.flow
        try:
            asked = int(request.query_params.get("asked", "1"))
        except ValueError:
            return hang_up()
        digits = params.get("Digits", "")
        state, action = step(flow, IvrState(asked=asked), Pressed(digits[0]) if digits else NoInput())
        if isinstance(action, Ask):
            return ask(token, flow, action, state.asked)
        return await finish(token, flow, action)

    async def status(request: Request) -> Response:
        params = await signed_params(request)
        if params is None:
            return Response("invalid signature", status_code=403)
        token = request.path_params["token"]
        call_status = params.get("CallStatus", "")
        events = []
        if call_status == "in-progress":
            events.append(CallEvent(token, "answered", now()))
        result = final_result(call_status, params.get("AnsweredBy"))
        if result:
            events.append(CallEvent(token, "ended", now(), result, f"CallStatus {call_status}"))
        if events:
            # Recorded here, durably, whichever process receives it (a `safecall serve` has no dialer).
            await run_in_threadpool(sink.record_events, events)
            for event in events:
                on_event(event)
        return Response(status_code=204)

    routes = [
        Route("/twilio/voice/{token}", voice, methods=["POST"]),
        Route("/twilio/gather/{token}", gather, methods=["POST"]),
        Route("/twilio/status/{token}", status, methods=["POST"]),
    ]
    return Starlette(routes=routes)


class WebhookServer:
    """uvicorn in a thread, bound to the configured (trusted) address only."""

    def __init__(self, app, host: str, port: int):
        self.host, self.port = host, port
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, name="twilio-webhooks", daemon=True)

    def start(self, timeout: float = 10) -> "WebhookServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TrunkError(f"the webhook server could not listen on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
