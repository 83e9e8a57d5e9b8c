"""A threaded FastAGI server that runs the IVR flow with pyst2's AGI over the socket.

Only the PBX may talk to it: a connection from any other address is closed unread. A session for a placed
call counts only when it is bound to that call: it names the channel the attempt's Originate produced, and AMI
has said that channel was answered. A call-back session finds its person by caller id. Then the call's
conversation (safecall.conversation) holds every rule; this module only renders its actions as AGI commands.
An unknown attempt gets a polite hang-up; a caller who hangs up mid-prompt ends the session cleanly.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

from asterisk.agi import AGI, re_code, re_kv

from safecall import phones
from safecall.conversation import (
    ANSWERED,
    HUNG_UP,
    NO_INPUT,
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
    NoteTransfer,
    Play,
    Pressed,
    RecordMessage,
    Store,
    Stored,
    Transfer,
    TransferResult,
)
from safecall.telephony.asterisk.channels import ChannelWatch, channel_id_for, plain_address
from safecall.telephony.base import CallEvent, CallSink, LineResult, LiveCall

log = logging.getLogger("safecall.fastagi")
SESSION_TIMEOUT_SECONDS = 300  # a silent Asterisk connection is let go after this (the longest IVR is far shorter)
CALLBACK_SCRIPT = "safecall-callback"  # agi://HOST:PORT/safecall-callback,${CALLERID(num)} (the inbound context)
# The closing a caller hears who is nobody's number or not due a call (the flow's closings.not_due).
NOT_DUE_CLOSING = "closing-not_due"
VOICE_STYLES = ("slow", "loud")  # recorded variants: prompt-greeting-slow.wav, prompt-greeting-loud.wav


class CallerHungUp(Exception):
    pass


class SocketAGI(AGI):
    """pyst2's AGI on a FastAGI socket (its constructor assumes stdin and installs a signal handler)."""

    def __init__(self, stream, peer: str = ""):
        self.peer = peer  # the address the connection came from
        self.stdin = self.stdout = stream
        self.stderr: io.TextIOBase = io.StringIO()  # pyst2 narrates every command to stderr; keep it off the logs
        self._got_sighup = False
        self.hung_up = False
        self.env: dict[str, str] = {}
        self._get_agi_env()
        self.stderr = _Discard()

    def test_hangup(self):
        if self.hung_up:
            raise CallerHungUp("the caller has hung up")

    def get_result(self, stdin=None):
        line = self.stdin.readline()
        if not line:
            self.hung_up = True
            raise CallerHungUp("Asterisk closed the AGI connection")
        if line.strip() == "HANGUP":
            # Asterisk's bare HANGUP line (not handled by pyst2): the channel is gone; a result line may follow.
            self.hung_up = True
            line = self.stdin.readline()
            if not line:
                raise CallerHungUp("the caller hung up")
        code, response = re_code.search(line.strip()).groups()
        if code == "200":
            result = {"result": ("", "")}
            for key, value, data in re_kv.findall(response):
                result[key] = (value, data)
            if result["result"][0] == "-1":
                self.hung_up = True
                raise CallerHungUp("the caller hung up during the command")
            return result
        if code == "511":
            self.hung_up = True
            raise CallerHungUp(response)
        raise RuntimeError(f"AGI error {code}: {response}")

    def command(self, command: str) -> tuple[str, str]:
        """Send `command` and return its result line's (result, rest) whatever it says, a hang-up too: Dial and Record
        report on a caller who hung up in them (DIALSTATUS, the recorded length), and GET VARIABLE works on a dead
        channel. (pyst2 raises on result -1 and drops the rest of the line.) Raises CallerHungUp only when nothing is
        left."""
        self.send_command(command)
        line = self.stdin.readline()
        if line.strip() == "HANGUP":
            self.hung_up = True
            line = self.stdin.readline()
        if not line:
            self.hung_up = True
            raise CallerHungUp("Asterisk closed the AGI connection")
        match = re.match(r"^200 result=(-?\d*)\s*(.*)$", line.strip())
        if match is None:
            if line.startswith("511"):
                self.hung_up = True
                raise CallerHungUp(line.strip())
            raise RuntimeError(f"AGI error: {line.strip()}")
        return match.group(1), match.group(2)


# What Dial's DIALSTATUS says, as the conversation's transfer results (CHANUNAVAIL, CONGESTION...: failed). CANCEL: the
# person hung up while the officer's phone rang, for the officer a call not answered in time.
DIAL_STATUS = {"ANSWER": "connected", "NOANSWER": "no_answer", "CANCEL": "no_answer", "BUSY": "busy"}
SAMPLES_PER_SECOND = 8000  # RECORD FILE's endpos counts samples of the 8 kHz channel


class _Discard(io.TextIOBase):
    def write(self, text):
        return len(text)


class FastAgiServer:
    """Serves `agi://host:port/SCRIPT,ARG` by handing each session to `session`.

    `pbx_addresses`: the only peers served (None: any, for tests over a socket pair and for `trunk check`).
    """

    def __init__(
        self, host: str, port: int, session: Callable[[SocketAGI], None], pbx_addresses: Collection[str] | None = None
    ):
        self.session = session
        self.pbx_addresses = pbx_addresses
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                server.serve_call(self.connection)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._server = Server((host, port), Handler, bind_and_activate=True)
        self._thread: threading.Thread | None = None
        self._connections: set = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.socket.getsockname()[:2]  # the server's address, typed
        return host, port

    def start(self) -> FastAgiServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fastagi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and end the sessions in progress (their calls end unacknowledged and are retried)."""
        if self._thread is not None:  # shutdown() waits for serve_forever, which never ran otherwise
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        with self._lock:
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve_call(self, connection) -> None:
        peer = _peer(connection)
        if self.pbx_addresses is not None and peer not in self.pbx_addresses:
            log.warning("FastAGI connection from %s refused: not the PBX's address", peer or "an unknown peer")
            return
        with self._lock:
            self._connections.add(connection)
        try:
            self._serve_call(connection, peer)
        finally:
            with self._lock:
                self._connections.discard(connection)

    def _serve_call(self, connection, peer: str) -> None:
        connection.settimeout(SESSION_TIMEOUT_SECONDS)
        stream = connection.makefile("rw", encoding="utf-8", newline="\n")
        try:
            self.session(SocketAGI(stream, peer))
        except CallerHungUp as exc:
            log.info("AGI session ended: %s", exc)
        except OSError as exc:
            log.warning("AGI connection failed: %s", exc)
        except Exception:
            log.exception("AGI session failed; the call ends without an acknowledgement and is retried")
        finally:
            stream.close()


def _peer(connection) -> str:
    try:
        address = connection.getpeername()
    except OSError:
        return ""
    return plain_address(address[0]) if isinstance(address, tuple) else ""


class IvrSessions:
    """The IVR side of an Asterisk trunk: what each FastAGI session from the PBX gets.

    `channels`: what AMI said about SafeCall's channels. `sounds`: SafeCall's copy of the prompt folder, to know
    which recorded slow or loud variants exist. `office_dial`: where a caller who is not due is put through.
    `help_dial(number)`: the dial string that puts a call for help through to the duty officer's number (the trunk's
    help_dial, or its channel); `message_dir`: where Asterisk writes the messages people leave (its own path).
    """

    def __init__(
        self,
        sink: CallSink,
        now: Callable[[], datetime],
        channels: ChannelWatch,
        *,
        prompt_dir: str = "safecall",
        answer_wait_seconds: float = 2.0,
        office_dial: str = "",
        sounds: Path | None = None,
        help_dial: Callable[[str], str] | None = None,
        message_dir: str = "/var/spool/asterisk/safecall-messages",
    ):
        self.sink, self.now, self.channels = sink, now, channels
        self.prompt_dir, self.answer_wait_seconds, self.office_dial, self.sounds = (
            prompt_dir,
            answer_wait_seconds,
            office_dial,
            sounds,
        )
        self.help_dial, self.message_dir = help_dial, message_dir.rstrip("/")

    def __call__(self, agi: SocketAGI) -> None:
        if agi.env.get("agi_network_script") == CALLBACK_SCRIPT:
            self.call_back(agi)
        else:
            self.placed_call(agi)

    # ---- a call SafeCall placed ----
    def placed_call(self, agi: SocketAGI) -> None:
        token = agi.env.get("agi_arg_1", "")
        refusal = self._refusal(token, agi.env)
        call = None if refusal else self.sink.live_call(token)
        if call is None:
            log.warning("AGI session refused (%s); hanging up", refusal or "the attempt closed meanwhile")
            agi.hangup()
            return
        self._converse(agi, call, Conversation(call.flow, listens=False, office_open=self._office_open(call)))

    def _office_open(self, call: LiveCall) -> bool:
        """Put through to the officer only in office hours, and only where this trunk can dial them."""
        return self.help_dial is not None and call.flow.office_open(self.now())

    def _refusal(self, token: str, env: dict) -> str | None:
        """Why this session may not speak for the attempt under `token`: not its channel, or not answered;
        None if it may."""
        if not token:
            return "no attempt token"
        uid = env.get("agi_uniqueid", "")
        if uid != channel_id_for(token):
            return "not the channel placed for this attempt"
        if not self.channels.answered(uid, env.get("agi_channel", ""), self.answer_wait_seconds):
            return "the call was not answered, or is not this channel"
        return None

    # ---- a call-back from a person ----
    def call_back(self, agi: SocketAGI) -> None:
        """A person returning a missed call: the same IVR if they are due a call,
        else a short message (and the office)."""
        caller = caller_e164(agi.env.get("agi_arg_1") or agi.env.get("agi_callerid", ""))
        call = self.sink.open_inbound_call(caller, self.now()) if caller else None
        if call is None:
            log.info(
                "call-back from %s: nobody due; message%s",
                phones.mask(caller) or "an unknown number",
                " and the office" if self.office_dial else "",
            )
            agi.answer()
            if self.office_dial:  # the dialplan dials it once this session ends; set first, so a caller who hangs up
                agi.execute("SET VARIABLE", "SAFECALL_OFFICE", f'"{self.office_dial}"')  # mid-message changes nothing
            agi.execute("STREAM FILE", f"{self.prompt_dir}/{NOT_DUE_CLOSING}", '""')
            return
        log.info("call-back from %s: attempt %s", phones.mask(caller), call.attempt_id)
        self._converse(
            agi, call, Conversation(call.flow, listens=False, inbound=True, office_open=self._office_open(call))
        )

    # ---- the conversation ----
    def _audio(self, name: str, style: str) -> str:
        """The prompt's recorded variant for the person's voice style where one exists, else the prompt."""
        if (
            style in VOICE_STYLES
            and self.sounds is not None
            and any((self.sounds / f"{name}-{style}{ext}").exists() for ext in (".wav", ".sln16"))
        ):
            name = f"{name}-{style}"
        return f"{self.prompt_dir}/{name}"

    def _converse(self, agi: SocketAGI, call: LiveCall, conversation: Conversation) -> None:
        """The conversation's actions as AGI commands (keys only: this trunk has no speech), until it is over.

        However the session ends (the caller hangs up, the connection breaks), the conversation hears of it: a
        call-back's end is recorded then, as nothing else reports it.
        """
        token, style, answered = call.token, call.voice_style, False
        actions = conversation.handle(ANSWERED)
        try:
            while actions:
                reply: Event | None = None
                for action in actions:
                    if isinstance(action, Claim):
                        reply = Claimed(self.sink.start_ivr(token, self.now()))
                        if not reply.ok:
                            log.warning(
                                "AGI session refused: the attempt is closed or its one IVR session began already"
                            )
                    elif isinstance(action, Ask):
                        if not answered:
                            agi.answer()
                            answered = True
                        digits = agi.get_data(self._audio(action.prompt, style), int(action.timeout * 1000), 1)
                        # The whole reply is the key: "12" or "1'..." is no key of the flow, never its first character.
                        reply = Pressed(digits) if digits else NO_INPUT
                    elif isinstance(action, Store):
                        reply = Stored(self._store(token, action))
                    elif isinstance(action, Closing):
                        agi.execute(
                            "STREAM FILE", self._audio(action.closing, style), '""'
                        )  # as Asterisk's own dialplan sends it
                        agi.execute("SET VARIABLE", "SAFECALL_RESULT", f'"{action.outcome or "no_key"}"')
                    elif isinstance(action, Play):
                        agi.execute("STREAM FILE", self._audio(action.prompt, style), '""')
                    elif isinstance(action, Transfer):
                        reply = self._transfer(agi, call, action)
                    elif isinstance(action, NoteTransfer):
                        self._keep(
                            self.sink.record_transfer, token, action.result, self.now(), action.connected_seconds
                        )
                    elif isinstance(action, RecordMessage):
                        reply = self._record(agi, call, action)
                    elif isinstance(action, KeepMessage):
                        self._keep(self.sink.record_message, token, action.ref, action.seconds, self.now())
                    elif isinstance(action, End):
                        self._end(token)
                    elif isinstance(action, HangUp):
                        agi.hangup()
                actions = conversation.handle(reply) if reply is not None else ()
        finally:
            for action in conversation.handle(HUNG_UP):  # only if the conversation was not over
                if isinstance(action, End):
                    self._end(token)

    def _transfer(self, agi: SocketAGI, call: LiveCall, transfer: Transfer) -> TransferResult:
        """Dial the duty officer from this channel; `g`: the call comes back here when the officer hangs up, so what
        became of it is read (on a caller who hung up, too: GET VARIABLE works on a dead channel)."""
        assert self.help_dial is not None, "a Transfer comes only with office hours, which need help_dial"
        dial = self.help_dial(transfer.number)
        dialled, _ = agi.command(f'EXEC Dial "{dial},{transfer.ring_seconds},g"')
        caller_gone = dialled == "-1"  # Dial returns -1 when the caller hung up; the HANGUP notice may follow
        _, status = agi.command("GET VARIABLE DIALSTATUS")
        result = DIAL_STATUS.get(status.strip("() "), "failed")
        seconds = None
        if result == "connected":
            _, answered = agi.command("GET VARIABLE ANSWEREDTIME")
            seconds = float(answered.strip("() ")) if answered.strip("() ").isdigit() else None
        log.info("help transfer: DIALSTATUS %s", status.strip("() ") or "unset")
        transferred = TransferResult(result, seconds)
        if caller_gone or agi.hung_up:  # kept before the session ends: the conversation hears of the hang-up next
            self._keep(self.sink.record_transfer, call.token, result, self.now(), seconds)
            raise CallerHungUp("the caller hung up during the transfer")
        return transferred

    def _record(self, agi: SocketAGI, call: LiveCall, record: RecordMessage) -> MessageRecorded:
        """Record the message to a file of its own; a caller who hangs up leaves what was said before (kept here)."""
        path = f"{self.message_dir}/help-{call.attempt_id}-{secrets.token_hex(4)}"
        result, rest = agi.command(f'RECORD FILE {path} wav "#" {record.max_seconds * 1000} BEEP s=10')
        endpos = re.search(r"endpos=(\d+)", rest)
        seconds = int(endpos.group(1)) / SAMPLES_PER_SECOND if endpos else 0.0
        recorded = MessageRecorded(
            f"{path}.wav" if seconds > 0 and "writefile" not in rest else None, round(seconds, 1)
        )
        if agi.hung_up or "(hangup)" in rest:  # result -1 (0 in old versions), then the HANGUP notice
            if recorded.ref:
                self._keep(self.sink.record_message, call.token, recorded.ref, recorded.seconds, self.now())
            raise CallerHungUp("the caller hung up during the message")
        return recorded

    def _keep(self, write: Callable, *args) -> None:
        """A transfer's or a message's record: a failure is logged, never the end of the call (help is stored)."""
        try:
            write(*args)
        except Exception:
            log.exception("could not keep what came of the call for help (the call-back task is there regardless)")

    def _store(self, token: str, store: Store) -> bool:
        try:
            return self.sink.record_keypress(
                token, store.digit, store.outcome, self.now(), speech=store.speech, risk=store.risk
            )
        except Exception:
            log.exception("could not store the keypress; hanging up without thanks so the attempt is retried")
            return False

    def _end(self, token: str) -> None:
        """A call-back's end: nothing else reports it (its answer was stored before)."""
        self.sink.record_events([CallEvent(token, "ended", self.now(), LineResult.ANSWERED, "call-back")])


def caller_e164(raw: str) -> str | None:
    """The caller id Asterisk gives (01012345678, +821012345678, 821012345678) as E.164; None if it is no number."""
    text = (raw or "").strip()
    for candidate in (text, "+" + text if text.startswith("82") else None):
        if candidate:
            try:
                return phones.normalise(candidate)
            except ValueError:
                continue
    return None
