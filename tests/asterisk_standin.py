"""An Asterisk stand-in for tests: real AMI and FastAGI over loopback TCP, replaying the recordings.

Every call replays the recorded AMI packets of its scenario (tests/fixtures/asterisk),
with the recording's identifiers replaced by this call's; answered calls connect
to SafeCall's FastAGI server the way Asterisk does and answer each AGI command
with the recorded reply.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# In the repository, so a fresh clone runs every Asterisk test; a missing file fails the test that reads it.
FIXTURES = Path(__file__).parent / "fixtures" / "asterisk"
CRLF = b"\r\n"
BLANK = b"\r\n\r\n"

# scenario -> (AMI recording, AGI recording or None, recorded number in it)
SCENARIOS = {
    "ack": ("ami-ack.txt", "agi-ack.txt", "1001"),
    "help": ("ami-ack.txt", "agi-ack.txt", "1001"),
    "no_key": ("ami-answered-no-key.txt", "agi-no-key.txt", "2001"),
    "hangup": ("ami-answered-no-key.txt", "agi-caller-hung-up.txt", "2001"),
    "no_answer": ("ami-no-answer.txt", None, "3001"),
    "busy": ("ami-busy.txt", None, "4001"),
    "congestion": ("ami-congestion.txt", None, "5001"),
}
UNREACHABLE = ("ami-fastagi-unreachable.txt", "1002")


def split_packets(raw: bytes) -> list[bytes]:
    """AMI packets of a recording, each without its blank-line terminator; the banner is its own packet."""
    banner, _, rest = raw.partition(CRLF)
    return [banner] + [p for p in rest.split(BLANK) if p]


def recorded_number(raw: bytes) -> str:
    return re.search(rb"ActionID: attempt-(\d+)", raw).group(1).decode()


@dataclass
class Recording:
    banner: bytes
    login: bytes  # Response to Login
    after_login: list[bytes]  # FullyBooted, SuccessfulAuth
    call: list[bytes]  # from the Originate response up to (not including) the Goodbye
    goodbye: bytes

    @classmethod
    def load(cls, name: str) -> Recording:
        packets = split_packets((FIXTURES / name).read_bytes())
        goodbye = next(p for p in packets if p.startswith(b"Response: Goodbye"))
        body = [p for p in packets[4:] if p is not goodbye]
        return cls(packets[0], packets[1], packets[2:4], body, goodbye)


def agi_verb(command: str) -> str:
    words = command.split()
    return (
        " ".join(words[:2])
        if command.startswith(("GET ", "STREAM ", "SET ", "RECORD ", "EXEC "))
        else (words[0] if words else "")
    )


@dataclass
class HelpAnswer:
    """What the far side does when SafeCall puts a call for help through (EXEC Dial) or records a message (RECORD FILE).

    Replies as res_agi gives them (no recording of these covers them; the formats are Asterisk's documented ones):
    EXEC answers "200 result=0", or -1 when the caller hung up in the application; GET VARIABLE "200 result=1 (VALUE)"
    or "200 result=0" when unset, and it works on a dead channel; RECORD FILE "200 result=0 (timeout) endpos=N",
    "200 result=35 (dtmf) endpos=N" (the # key), or "200 result=-1 (hangup) endpos=N", N in samples of 8 kHz (as
    res_agi.c's handle_recordfile sends them). A hang-up during a command: its result, then the bare HANGUP notice
    run_agi sends once it sees the channel gone; after it, other commands get 511.
    """

    dial_status: str = "NOANSWER"  # DIALSTATUS after the Dial: ANSWER, NOANSWER, BUSY, CHANUNAVAIL, CONGESTION...
    answered_seconds: int = 0  # ANSWEREDTIME, for ANSWER
    message_seconds: float = 0.0  # what the caller says after the beep (0: nothing)
    hangup_in: str | None = None  # "dial" or "record": the caller hangs up in it
    finish_with_hash: bool = False  # the caller presses # to end the message
    write_files: bool = True  # write the recording where RECORD FILE says, as Asterisk does


def write_wav(path: Path, seconds: float) -> None:
    """A recording as Asterisk's wav format writes it: 8 kHz, 16-bit mono (a quiet tone, so a player has sound)."""
    import math
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(
            b"".join(
                int(3000 * math.sin(2 * math.pi * 440 * i / 8000)).to_bytes(2, "little", signed=True)
                for i in range(int(seconds * 8000))
            )
        )


def agi_exchanges(name: str) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """The environment block Asterisk sent, then each (verb, command, reply lines) in order."""
    env: list[str] = []
    exchanges: list[tuple[str, str, list[str]]] = []
    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        side, text = line[:1], line[2:]
        if side == ">":
            exchanges.append((agi_verb(text), text, []))
        elif side == "<" and not exchanges:
            env.append(text)
        elif side == "<":
            exchanges[-1][2].append(text)
    return env, exchanges


@dataclass
class CallRecord:
    number: str
    channel_id: str
    token: str
    scenario: str
    agi_transcript: list[tuple[str, str]] = field(default_factory=list)
    agi_connected: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    channel_name: str = ""  # as its Newchannel told it
    up: bool = False  # a Newstate said Up
    # The stand-in's own log (time.time()): when the Originate came in, and when the channel was gone (its Hangup
    # told, or the call cut short). Channel and calls-per-second limits are checked against these.
    originated_at: float = field(default_factory=time.time)
    hung_up_at: float | None = None


HOLD_POINTS = ("ringing", "answered", "after_ivr")
HOLD_SECONDS = 10  # a hold nobody releases ends by itself


@dataclass
class Hold:
    """A call stopped at a point of its recording until `release` is set, so a test can act meanwhile.

    "ringing": before its OriginateResponse, in a scenario that never answers (no_answer: only Newstate Ringing so far);
    "answered": after its OriginateResponse, before its FastAGI session; "after_ivr": its session over, the
    channel still up, before its Hangup.
    """

    point: str
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    call: CallRecord | None = None

    def stop_here(self, point: str, call: CallRecord) -> None:
        if point == self.point and not self.reached.is_set():
            self.call = call
            self.reached.set()
            self.release.wait(HOLD_SECONDS)


class AsteriskStandIn:
    def __init__(
        self,
        scripts: dict[str, str],
        *,
        username: str = "safecall",
        secret: str = "safecall-test-secret",
        fastagi: tuple[str, int] | None = None,
        contexts=("safecall-agi",),
        packet_gap: float = 0.001,
    ):
        self.scripts = scripts  # dialled number (as in the Channel) -> scenario
        self.username, self.secret = username, secret
        self.fastagi = fastagi
        self.contexts = set(contexts)
        self.packet_gap = packet_gap
        self.agi_delay = 0.0
        self.holds: dict[str, Hold] = {}  # number -> the hold its next call stops at
        self.help_answers: dict[str, HelpAnswer] = {}  # number (or caller) -> what happens on its transfer and message
        self._inbound = 0  # call-backs so far
        self.calls: list[CallRecord] = []
        self.active: dict[str, CallRecord] = {}
        self.actions: list[dict[str, str]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._connections: list[socket.socket] = []
        self._sessions: list = []  # senders of logged-in AMI sessions: call events go to all of them
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return self._server.getsockname()[1]

    def start(self) -> AsteriskStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self.drop_connections()
        self._thread.join(2)
        self._server.close()

    def hold(self, number: str, point: str) -> Hold:
        """Stop the next call to `number` at `point` (see Hold) until the test releases it."""
        assert point in HOLD_POINTS, point
        self.holds[number] = hold = Hold(point)
        return hold

    def drop_connections(self) -> None:
        """Cut every AMI link, as a network fault or an Asterisk restart would."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._sessions = []
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # ---- AMI ----
    def _serve(self, conn: socket.socket) -> None:
        send_lock = threading.Lock()
        template = Recording.load("ami-ack.txt")

        def send(packet: bytes) -> None:
            with send_lock:
                conn.sendall(packet + BLANK)

        try:
            with send_lock:
                conn.sendall(template.banner + CRLF)
            buffer = b""
            logged_in = False
            while not self._closing.is_set():
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                while BLANK in buffer:
                    raw, buffer = buffer.split(BLANK, 1)
                    action = dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)
                    self.actions.append(action)
                    logged_in = self._act(action, send, logged_in, template)
        except OSError:
            return
        finally:
            conn.close()

    def _act(self, action: dict, send, logged_in: bool, template: Recording) -> bool:
        name, action_id = action.get("Action", ""), action.get("ActionID", "")

        def reply(text: str) -> None:
            send(text.replace("{id}", action_id).encode())

        if name == "Login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                send(template.login.replace(b"login-1", action_id.encode()))
                for packet in template.after_login:
                    send(packet)
                with self._lock:
                    self._sessions.append(send)
                return True
            reply("Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed")
            return False
        if not logged_in:
            reply("Response: Error\r\nActionID: {id}\r\nMessage: Permission denied")
        elif name == "Ping":
            reply("Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1795326110.000000")
        elif name == "Logoff":
            send(template.goodbye.replace(b"logoff-1", action_id.encode()))
        elif name == "Originate":
            self._originate(action, send)
        elif name == "CoreShowChannels":
            reply("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channels will follow")
            for call in list(self.active.values()):
                reply(
                    f"Event: CoreShowChannel\r\nActionID: {{id}}\r\nChannel: {call.channel_name}\r\n"
                    f"Uniqueid: {call.channel_id}\r\n"
                    f"ChannelState: {6 if call.up else 5}\r\nChannelStateDesc: {'Up' if call.up else 'Ringing'}"
                )
            reply(
                f"Event: CoreShowChannelsComplete\r\nActionID: {{id}}\r\n"
                f"EventList: Complete\r\nListItems: {len(self.active)}"
            )
        elif name == "ShowDialPlan":
            if action.get("Context") in self.contexts:
                reply("Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: DialPlan list will follow")
                reply(
                    f"Event: ListDialplan\r\nActionID: {{id}}\r\nContext: {action['Context']}\r\nExtension: s\r\n"
                    "Priority: 1\r\nApplication: Answer"
                )
                reply("Event: ShowDialPlanComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: 1")
            else:
                reply(f"Response: Error\r\nActionID: {{id}}\r\nMessage: Did not find context {action.get('Context')}")
        else:
            reply("Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command")
        return logged_in

    def _originate(self, action: dict, send) -> None:
        if action.get("Channel", "").startswith("Local/s@"):  # a call straight into a dialplan context
            send(
                f"Response: Success\r\nActionID: {action['ActionID']}\r\n"
                "Message: Originate successfully queued".encode()
            )
            context = action["Channel"].split("@", 1)[1]
            if context in self.contexts:
                token = action.get("Variable", "=").split("=", 1)[1]
                probe = CallRecord("s", action.get("ChannelId", "probe"), token, "ack")
                threading.Thread(target=self._run_agi, args=(probe, "agi-ack.txt"), daemon=True).start()
            return
        number = re.search(r"/(\+?\d+)", action.get("Channel", "")).group(1)
        token = action.get("Variable", "=").split("=", 1)[1]
        call = CallRecord(
            number,
            action["ChannelId"],
            token,
            self.scripts.get(number, "no_answer"),
            channel_name=f"Local/{number}@callee-00000000;1",
        )
        self.calls.append(call)
        self.active[call.channel_id] = call
        threading.Thread(target=self._play, args=(call, action["ActionID"], send), daemon=True).start()

    @staticmethod
    def _rewrite(packet: bytes, recorded: str, call: CallRecord, action_id: str) -> bytes:
        """The recording's ids and number made this call's, in one pass over the recorded packet.

        One pass, because a value put in must not be rewritten again: a random channel id or token
        containing the recorded number ("2001") would otherwise be mangled, and the call's events lost.
        """
        swaps = {
            f"attempt-{recorded}": action_id,
            f"att-{recorded}": call.channel_id,
            f"Value: {recorded}": f"Value: {call.token}",
            f"Attempt: {recorded}": f"Attempt: {call.token}",
            recorded: call.number,
        }
        pattern = re.compile("|".join(re.escape(key) for key in swaps).encode())  # the longer keys come first
        return pattern.sub(lambda match: swaps[match.group().decode()].encode(), packet)

    def _broadcast(self, packet: bytes) -> None:
        """Like Asterisk, every logged-in session gets call events; a dropped link does not stop the call."""
        with self._lock:
            sessions = list(self._sessions)
        for send in sessions:
            try:
                send(packet)
            except OSError:
                with self._lock:
                    if send in self._sessions:
                        self._sessions.remove(send)

    def _play(self, call: CallRecord, action_id: str, send) -> None:
        ami_name, agi_name, recorded = SCENARIOS[call.scenario]
        packets = Recording.load(ami_name).call
        respond = send
        hold = self.holds.pop(call.number, Hold("none"))

        def send(packet: bytes) -> None:  # the Originate's response to its session; events to every session
            if packet.startswith(b"Response:"):
                respond(packet)
                return
            keys = dict(line.split(": ", 1) for line in packet.decode().split("\r\n") if ": " in line)
            if (
                keys.get("Uniqueid") == call.channel_id and "Event" in keys
            ):  # the call's own channel, not the far half of the Local channel
                if keys["Event"] == "Newchannel":
                    call.channel_name = keys["Channel"]
                elif keys["Event"] == "Newstate" and keys["ChannelState"] == "6":
                    call.up = True
                elif keys["Event"] == "Hangup":
                    call.hung_up_at = time.time()
                    self.active.pop(
                        call.channel_id, None
                    )  # as in Asterisk, the channel is gone when its Hangup is told
            self._broadcast(packet)

        try:
            for packet in packets:
                if packet.startswith(b"Event: OriginateResponse"):
                    hold.stop_here("ringing", call)
                send(self._rewrite(packet, recorded, call, action_id))
                time.sleep(self.packet_gap)
                if agi_name and packet.startswith(b"Event: OriginateResponse"):
                    hold.stop_here("answered", call)
                    connected = self._run_agi(call, agi_name)
                    hold.stop_here("after_ivr", call)
                    if not connected:
                        # No FastAGI server: Asterisk's AGI() fails and the channel hangs up.
                        unreachable = Recording.load(UNREACHABLE[0]).call
                        start = (
                            next(i for i, p in enumerate(unreachable) if p.startswith(b"Event: OriginateResponse")) + 1
                        )
                        for rest in unreachable[start:]:
                            send(self._rewrite(rest, UNREACHABLE[1], call, action_id))
                        return
        except OSError:
            pass  # the AMI link was cut; the call goes on ending without anyone listening
        finally:
            self.active.pop(call.channel_id, None)
            if call.hung_up_at is None:
                call.hung_up_at = time.time()
            call.done.set()

    # ---- FastAGI, as Asterisk's AGI() application speaks it ----
    def call_in(self, caller: str, scenario: str = "ack", source: str = "127.0.0.1") -> CallRecord:
        """A call from `caller` to the office, as the inbound context of ivr/asterisk/extensions_safecall.conf hands
        it to FastAGI (script safecall-callback, the caller id as its argument); returns when the session is over.

        `scenario` says what the caller does if asked (ack, help, no_key, hangup); `source`: the address Asterisk
        connects from.
        """
        self._inbound += 1
        call = CallRecord(
            caller, f"1795330000.{self._inbound}", caller, scenario, channel_name=f"PJSIP/carrier-{self._inbound:08x}"
        )
        script = "safecall-callback"
        host, port = self.fastagi
        self._run_agi(
            call,
            SCENARIOS[scenario][1],
            source,
            {
                "agi_network_script": script,
                "agi_request": f"agi://{host}:{port}/{script}",
                "agi_type": "PJSIP",
                "agi_callerid": caller,
                "agi_context": "safecall-inbound",
                "agi_extension": "0221480000",
                "agi_priority": "3",
            },
        )
        call.done.set()
        return call

    def _run_agi(
        self, call: CallRecord, agi_name: str, source: str = "127.0.0.1", env_changes: dict | None = None
    ) -> bool:
        if self.fastagi is None:
            return False
        try:
            sock = socket.create_connection(self.fastagi, timeout=5, source_address=(source, 0))
        except OSError:
            return False
        call.agi_connected = True
        env, exchanges = agi_exchanges(agi_name)
        by_verb: dict[str, list[list[str]]] = {}
        for verb, _, reply in exchanges:
            by_verb.setdefault(verb, []).append(reply)
        if call.scenario == "help":
            by_verb["GET DATA"] = [["200 result=2"]]
        stream = sock.makefile("rw", encoding="utf-8", newline="\n")

        def say(line: str) -> None:
            call.agi_transcript.append(("<", line))
            stream.write(line + "\n")
            stream.flush()

        help_answer, dead = self.help_answers.get(call.number), False

        def help_reply(command: str) -> list[str] | None:
            """The reply to a transfer's or a message's command, or None for any other command."""
            nonlocal dead
            verb = agi_verb(command)
            if verb == "GET VARIABLE":  # works on a dead channel
                name = command.split()[2].strip('"')
                value = {
                    "DIALSTATUS": help_answer.dial_status,
                    "ANSWEREDTIME": str(help_answer.answered_seconds) if help_answer.dial_status == "ANSWER" else "",
                }.get(name, "")
                return [f"200 result=1 ({value})" if value else "200 result=0"]
            if dead:
                return ["511 Command Not Permitted on a dead channel or intercept routine"]
            if verb == "EXEC Dial":
                if help_answer.hangup_in == "dial":
                    dead = True
                    return ["200 result=-1", "HANGUP"]
                return ["200 result=0"]
            if verb == "RECORD FILE":
                words = command.split()
                path, max_ms = Path(words[2] + ".wav"), int(words[5])
                seconds = min(help_answer.message_seconds, max_ms / 1000)
                if seconds and help_answer.write_files:
                    write_wav(path, seconds)
                endpos = int(seconds * 8000)
                if help_answer.hangup_in == "record":
                    dead = True
                    return [f"200 result=-1 (hangup) endpos={endpos}", "HANGUP"]
                if help_answer.finish_with_hash:
                    return [f"200 result=35 (dtmf) endpos={endpos}"]
                return [f"200 result=0 (timeout) endpos={endpos}"]
            return None

        # The AGI recordings come from calls placed without a ChannelId; ami-fastagi-unreachable.txt shows the AGI
        # application running on the channel whose Uniqueid is the Originate's ChannelId (att-1002). So Asterisk
        # tells that id as agi_uniqueid, and that channel's name as agi_channel.
        mine = {
            "agi_arg_1": call.token,
            "agi_uniqueid": call.channel_id,
            "agi_channel": call.channel_name,
            **(env_changes or {}),
        }
        try:
            for line in env:
                key = line.split(": ", 1)[0]
                say(f"{key}: {mine[key]}" if key in mine else line)
            while True:
                command = stream.readline()
                if not command:
                    return True
                command = command.rstrip("\n")
                call.agi_transcript.append((">", command))
                special = help_reply(command) if help_answer is not None else None
                if special is not None:
                    for line in special:
                        say(line)
                    continue
                replies = by_verb.get(agi_verb(command))
                if not replies:
                    say("510 Invalid or unknown command")
                    continue
                # The recorded replies in order; the last one repeats (a question asked again).
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                time.sleep(self.agi_delay)  # the caller listening to the prompt
                for line in reply:
                    say(line)
                if "HANGUP" in reply:
                    return True
        except (OSError, ValueError):  # the server went away mid-session: the channel hangs up, as in Asterisk
            return True
        finally:
            try:
                stream.close()
            except (OSError, ValueError):
                pass
            sock.close()
