"""A local fake of Twilio for tests: the REST calls the SDK makes, and the webhooks Twilio sends.

Webhooks are signed with RequestValidator.compute_signature over the public
URL, as Twilio signs them, and posted to the webhook server's local address
(what a reverse proxy does).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

from twilio.request_validator import RequestValidator

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "fake-auth-token-for-tests-0000001"
FROM = "+827000000001"


@dataclass
class FakeCall:
    sid: str
    to: str
    params: dict
    behaviour: str
    status: str = "queued"
    answered_by: str | None = None
    start_time: float = field(default_factory=time.time)
    ended_at: float | None = None  # when the fake sent the call's final status (the channel is free again)
    webhooks: list[tuple[str, dict, int, str]] = field(default_factory=list)  # (url, params, status, body)
    dialled: tuple[str | None, str | None] | None = None  # the <Dial>ed number and its timeout
    recorded_max: str | None = None  # the <Record>'s maxLength
    final_sent: bool = False  # the call's 'completed' was sent already (a hang-up during a <Record>)
    done: threading.Event = field(default_factory=threading.Event)


def wav_bytes(seconds: int) -> bytes:
    """A recording as Twilio serves one: 8 kHz 16-bit mono WAV (a quiet tone)."""
    import io
    import math
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(
            b"".join(
                int(3000 * math.sin(2 * math.pi * 440 * i / 8000)).to_bytes(2, "little", signed=True)
                for i in range(seconds * 8000)
            )
        )
    return out.getvalue()


class FakeTwilio:
    def __init__(
        self, public_base: str, local_base: str, scripts: dict[str, str], *, machine_answers: set[str] = frozenset()
    ):
        self.public_base, self.local_base = public_base, local_base
        self.scripts = scripts
        self.machine_answers = machine_answers
        self.calls: dict[str, FakeCall] = {}
        self.create_failures: list[int] = []  # statuses to answer the next creates with
        self.create_anyway_on_500 = False  # a 500 after the call was made: the SDK must not dial twice
        self.duplicate_callbacks = False
        self.out_of_order = False
        self.drop_final_callback: set[str] = set()  # behaviours whose 'completed' callback never comes
        self.fetch_failures: dict[str, int] = {}  # CallSid -> HTTP status a GET of that call answers with
        self.ring_seconds: dict[str, float] = {}  # behaviour -> how long its calls ring before they are answered or end
        self.retry_after: str | None = None  # the Retry-After header sent with a 429
        self.refusals: dict[str, int] = {}  # To -> how many more creates of calls to it are answered 429
        self.creates: list[tuple[float, str]] = []  # (time.time(), To) of every create request, made or refused
        self.errors: list[str] = []
        self.messages: list[dict] = []  # SMS sent through Messages.json
        self.unverified: set[str] = set()  # numbers a trial account may not text (Twilio's error 21608)
        self.validator = RequestValidator(TOKEN)
        # A human on "help": what the duty officer's phone does when <Dial>led (DialCallStatus, DialCallDuration), and
        # the message the person leaves at a <Record> (seconds; 0: nothing), or hangs up during it (by To).
        self.dial_status: dict[str, tuple[str, int]] = {}
        self.message_seconds: dict[str, int] = {}
        self.hangup_in_record: set[str] = set()
        self.recordings: dict[str, bytes] = {}  # RecordingSid -> the WAV served at .../Recordings/RE....wav
        self.recording_fetches: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if status == 429 and fake.retry_after:
                    self.send_header("Retry-After", fake.retry_after)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return False
                return True

            def do_GET(self):
                if not self._authorised():
                    return
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == f"/2010-04-01/Accounts/{SID}.json":
                    return self._reply(200, {"sid": SID, "status": "active", "friendly_name": "test"})
                if parts.path == f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json":
                    numbers = [{"sid": "PN1", "phone_number": FROM}] if query.get("PhoneNumber") in (FROM, None) else []
                    return self._reply(
                        200, {"incoming_phone_numbers": numbers, "next_page_uri": None, "page": 0, "page_size": 50}
                    )
                recording = re.fullmatch(rf"/2010-04-01/Accounts/{SID}/Recordings/(RE[0-9a-f]{{32}})\.wav", parts.path)
                if recording and recording.group(1) in fake.recordings:
                    fake.recording_fetches.append(recording.group(1))
                    data = fake.recordings[recording.group(1)]
                    self.send_response(200)
                    self.send_header("Content-Type", "audio/x-wav")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                match = re.fullmatch(rf"/2010-04-01/Accounts/{SID}/Calls/(CA\w+)\.json", parts.path)
                if match and match.group(1) in fake.fetch_failures:
                    status = fake.fetch_failures[match.group(1)]
                    return self._reply(
                        status, {"code": 20404 if status == 404 else 20500, "message": "no call", "status": status}
                    )
                if match and match.group(1) in fake.calls:
                    return self._reply(200, fake.resource(fake.calls[match.group(1)]))
                if parts.path == f"/2010-04-01/Accounts/{SID}/Calls.json":
                    found = [fake.resource(c) for c in fake.calls.values() if c.to == query.get("To")]
                    return self._reply(200, {"calls": found, "next_page_uri": None, "page": 0, "page_size": 50})
                self._reply(404, {"code": 20404, "message": "not found", "status": 404})

            def do_POST(self):
                if not self._authorised():
                    return
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                if urlsplit(self.path).path == f"/2010-04-01/Accounts/{SID}/Messages.json":
                    params = {k: v[0] for k, v in form.items()}
                    if params["To"] in fake.unverified:
                        return self._reply(
                            400,
                            {
                                "code": 21608,
                                "status": 400,
                                "more_info": "https://www.twilio.com/docs/errors/21608",
                                "message": f"The number {params['To']} is unverified. Trial accounts cannot send "
                                f"messages to unverified numbers; verify {params['To']} at twilio.com",
                            },
                        )
                    fake.messages.append(params)
                    return self._reply(
                        201,
                        {
                            "sid": "SM" + uuid.uuid4().hex,
                            "status": "queued",
                            "to": params["To"],
                            "from": params["From"],
                            "body": params["Body"],
                        },
                    )
                if urlsplit(self.path).path != f"/2010-04-01/Accounts/{SID}/Calls.json":
                    return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                status, body = fake.create(form)
                self._reply(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for call in self.calls.values():
            call.done.wait(5)

    def resource(self, call: FakeCall) -> dict:
        return {
            "sid": call.sid,
            "account_sid": SID,
            "to": call.to,
            "from": FROM,
            "status": call.status,
            "answered_by": call.answered_by,
            "start_time": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(call.start_time)),
            "direction": "outbound-api",
        }

    # ---- creating and playing calls ----
    def create(self, form: dict) -> tuple[int, dict]:
        params = {k: v if k == "StatusCallbackEvent" else v[0] for k, v in form.items()}
        to = params["To"]
        self.creates.append((time.time(), to))
        behaviour = self.scripts.get(to, "no_answer")
        if self.refusals.get(to):
            self.refusals[to] -= 1
            return 429, {"code": 20429, "message": "Too Many Requests", "status": 429}
        if self.create_failures:
            status = self.create_failures.pop(0)
            if status == 500 and self.create_anyway_on_500:
                self._start_call(to, params, behaviour)
            return status, {"code": 20429 if status == 429 else 20500, "message": "try again", "status": status}
        if behaviour == "invalid":
            return 400, {"code": 21211, "message": f"The 'To' number {to} is not a valid phone number.", "status": 400}
        if behaviour == "geo":
            return 400, {"code": 21215, "message": "Account not authorized to call this number.", "status": 400}
        if behaviour == "blocked":
            return 400, {"code": 21216, "message": f"Account not allowed to call {to}", "status": 400}
        call = self._start_call(to, params, behaviour)
        return 201, self.resource(call)

    def _start_call(self, to: str, params: dict, behaviour: str) -> FakeCall:
        call = FakeCall("CA" + uuid.uuid4().hex, to, params, behaviour)
        self.calls[call.sid] = call
        threading.Thread(target=self._play, args=(call,), daemon=True).start()
        return call

    def post(self, call: FakeCall, url: str, params: dict, *, sign: bool = True) -> tuple[int, str]:
        """POST a webhook as Twilio does: signed for the public URL, delivered to the local server."""
        params = {"AccountSid": SID, "CallSid": call.sid, "From": FROM, "To": call.to, **params}
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sign:
            headers["X-Twilio-Signature"] = self.validator.compute_signature(url, params)
        local = url.replace(self.public_base, self.local_base, 1)
        try:
            with urlopen(Request(local, data=urlencode(params).encode(), headers=headers), timeout=10) as response:
                status, body = response.status, response.read().decode()
        except HTTPError as exc:
            status, body = exc.code, exc.read().decode()
        call.webhooks.append((url, params, status, body))
        return status, body

    def _status(self, call: FakeCall, status: str, **extra) -> None:
        call.status = status
        params = {"CallStatus": status, **extra}
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        self.post(call, call.params["StatusCallback"], params)
        if self.duplicate_callbacks:
            self.post(call, call.params["StatusCallback"], params)

    def _play(self, call: FakeCall) -> None:
        try:
            self._status(call, "initiated")
            self._status(call, "ringing")
            time.sleep(self.ring_seconds.get(call.behaviour, 0))
            final = {"no_answer": "no-answer", "busy": "busy", "failed": "failed", "sip404": "failed"}.get(
                call.behaviour
            )
            if final:
                time.sleep(0.01)
                call.ended_at = time.time()
                self._status(call, final, **({"SipResponseCode": "404"} if call.behaviour == "sip404" else {}))
                return
            if self.machine_answers and call.behaviour in self.machine_answers:
                call.answered_by = "machine_end_beep"
            elif call.params.get("MachineDetection"):
                call.answered_by = "human"

            def answered() -> None:
                self._status(call, "in-progress")

            if not self.out_of_order:
                answered()
            self._converse(call)
            call.status = "completed"
            call.ended_at = time.time()
            if call.behaviour not in self.drop_final_callback and not call.final_sent:
                self._status(call, "completed", CallDuration="25")
            if self.out_of_order:
                answered()  # 'answered' arriving after 'completed'
                call.status = "completed"
        except Exception as exc:  # a broken fake must fail the test loudly, not hang it
            self.errors.append(f"{call.behaviour}: {exc!r}")
            raise
        finally:
            call.done.set()

    def _converse(self, call: FakeCall) -> None:
        """Fetch the IVR and answer its <Gather>s as the person would."""
        params = {"CallStatus": "in-progress"}
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        status, body = self.post(call, call.params["Url"], params)
        pressed = False
        for _ in range(6):
            if status != 200 or call.behaviour in ("hangup",):
                return
            twiml = ET.fromstring(body)
            dial, record = twiml.find("Dial"), twiml.find("Record")
            if dial is not None:  # the officer's phone rings, and is answered or not
                status, duration = self.dial_status.get(call.to, ("no-answer", 0))
                call.dialled = (dial.text, dial.get("timeout"))
                status, body = self.post(
                    call, dial.get("action"), {**params, "DialCallStatus": status, "DialCallDuration": str(duration)}
                )
                continue
            if record is not None:  # as Twilio: the action is requested after the message, or after a hang-up in it
                call.recorded_max = record.get("maxLength")
                seconds = self.message_seconds.get(call.to, 0)
                sid = "RE" + uuid.uuid4().hex
                if seconds:
                    self.recordings[sid] = wav_bytes(seconds)
                message = {
                    "RecordingSid": sid,
                    "RecordingDuration": str(seconds),
                    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Recordings/{sid}",
                }
                processed = {**message, "RecordingStatus": "completed"}
                if call.to in self.hangup_in_record:
                    # The call ends first; only the recording's status callback tells of the message (the one
                    # callback SafeCall can count on after a hang-up).
                    call.status = "completed"
                    self._status(call, "completed", CallDuration="30")
                    call.final_sent = True
                    self.post(call, record.get("recordingStatusCallback"), processed)
                    return
                status, body = self.post(call, record.get("action"), {**params, **message})
                self.post(call, record.get("recordingStatusCallback"), processed)
                continue
            gather = twiml.find("Gather")
            if gather is None:
                return  # a closing message and <Hangup/>
            if call.behaviour.startswith("say:"):  # say:TEXT:CONFIDENCE, a spoken answer as the recogniser heard it
                _, text, confidence = call.behaviour.split(":")
                status, body = self.post(
                    call, gather.get("action"), {**params, "SpeechResult": text, "Confidence": confidence}
                )
                continue
            digit = {"ack": "1", "help": "2"}.get(call.behaviour, "")
            if call.behaviour in ("ack_late",) and not pressed:
                digit, pressed = "", True
            elif call.behaviour == "ack_late":
                digit = "1"
            status, body = self.post(call, gather.get("action"), {**params, "Digits": digit} if digit else params)
