"""A threaded FastAGI server that runs the IVR flow with pyst2's AGI over the socket.

The keypress is written to the database before the thank-you plays. An
unknown attempt, or a database failure, gets a polite hang-up (the attempt is
then retried); a caller who hangs up mid-prompt ends the session cleanly.
"""

from __future__ import annotations

import io
import logging
import socket
import socketserver
import threading
from datetime import datetime
from typing import Callable

from asterisk.agi import AGI, re_code, re_kv

from safecall.ivr import Ask, Finish, IvrState, NoInput, Pressed, Start, step
from safecall.telephony.base import CallSink

log = logging.getLogger("safecall.fastagi")
SESSION_TIMEOUT_SECONDS = 300  # a silent Asterisk connection is let go after this (the longest IVR is far shorter)


class CallerHungUp(Exception):
    pass


class SocketAGI(AGI):
    """pyst2's AGI on a FastAGI socket (its constructor assumes stdin and installs a signal handler)."""

    def __init__(self, stream):
        self.stdin = self.stdout = stream
        self.stderr = io.StringIO()  # pyst2 narrates every command to stderr; keep it off the logs
        self._got_sighup = False
        self.hung_up = False
        self.env = {}
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


class _Discard(io.TextIOBase):
    def write(self, text):
        return len(text)


class FastAgiServer:
    """Serves `agi://host:port/safecall,${SAFECALL_ATTEMPT}`: agi_arg_1 is the attempt's token."""

    def __init__(self, host: str, port: int, sink: CallSink, now: Callable[[], datetime], prompt_dir: str = "safecall"):
        self.sink, self.now, self.prompt_dir = sink, now, prompt_dir
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
        return self._server.server_address[:2]

    def start(self) -> "FastAgiServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fastagi", daemon=True)
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
        with self._lock:
            self._connections.add(connection)
        try:
            self._serve_call(connection)
        finally:
            with self._lock:
                self._connections.discard(connection)

    def _serve_call(self, connection) -> None:
        connection.settimeout(SESSION_TIMEOUT_SECONDS)
        stream = connection.makefile("rw", encoding="utf-8", newline="\n")
        try:
            agi = SocketAGI(stream)
            self.run_flow(agi)
        except CallerHungUp as exc:
            log.info("AGI session ended: %s", exc)
        except OSError as exc:
            log.warning("AGI connection failed: %s", exc)
        except Exception:
            log.exception("AGI session failed; the call ends without an acknowledgement and is retried")
        finally:
            stream.close()

    def _audio(self, name: str) -> str:
        return f"{self.prompt_dir}/{name}"

    def run_flow(self, agi: SocketAGI) -> None:
        token = agi.env.get("agi_arg_1", "")
        call = self.sink.live_call(token) if token else None
        if call is None:
            log.warning("AGI session for an unknown or closed attempt; hanging up")
            agi.hangup()
            return
        agi.answer()
        state, action = step(call.flow, IvrState(), Start())
        while isinstance(action, Ask):
            digits = agi.get_data(self._audio(action.prompt), int(action.timeout * 1000), 1)
            event = Pressed(digits[0]) if digits else NoInput()
            state, action = step(call.flow, state, event)
        assert isinstance(action, Finish)
        if action.outcome:
            try:
                recorded = self.sink.record_keypress(token, action.digit, action.outcome, self.now())
            except Exception:
                log.exception("could not store the keypress; hanging up without thanks so the attempt is retried")
                agi.hangup()
                return
            if not recorded:
                agi.hangup()
                return
        agi.execute("STREAM FILE", self._audio(action.closing), '""')  # as Asterisk's own dialplan sends it
        agi.execute("SET VARIABLE", "SAFECALL_RESULT", f'"{action.outcome or "no_key"}"')
        agi.hangup()
