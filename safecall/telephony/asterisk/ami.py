"""asterisk-ami behind one small adapter that contains its defects (each one shown by a test in tests/test_asterisk.py):

- its 3 s socket timeout also kills the reader when the line is idle: reads block here;
- an exception in a listener kills the reader thread: listeners are isolated;
- sends and the ActionID counter are unlocked: both are serialised, and ids carry a per-connection prefix;
- response callbacks hit an unimported `traceback`: no callbacks are used, only futures;
- a malformed packet makes its parsers raise, which ends the reader: such packets are logged and skipped;
- nothing keeps the link alive: a ping loop notices a dead link and reconnects with backoff.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
from collections.abc import Callable

from asterisk.ami import AMIClient, SimpleAction
from asterisk.ami.action import Action

from safecall.errors import TrunkError
from safecall.i18n import N_

log = logging.getLogger("safecall.ami")


class _PatchedClient(AMIClient):
    def __init__(self, address: str, port: int, timeout: float):
        super().__init__(address=address, port=port, timeout=timeout)
        self._send_lock = threading.Lock()
        self._prefix = secrets.token_hex(4)

    def next_action_id(self) -> str:
        with self._send_lock:
            self._action_counter += 1
            return f"sc-{self._prefix}-{self._action_counter}"

    def connect(self) -> None:
        try:
            self._socket = socket.create_connection((self._address, self._port), timeout=self._timeout)
        except OSError as exc:
            raise TrunkError(
                N_("cannot reach AMI at {host}:{port}: {error}"),
                host=self._address,
                port=self._port,
                error=exc.strerror or exc,
            ) from exc
        self._socket.settimeout(None)  # blocking reads: an idle line must not kill the reader
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self.listen, name="ami-reader", daemon=True)
        self._thread.start()

    def disconnect(self) -> None:
        self.finished.set()
        try:
            self._socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked reader; close() alone does not
        except OSError:
            pass
        self._socket.close()
        self._thread.join(self._timeout)

    def send(self, pack) -> None:
        data = bytearray(str(pack) + "\r\n", self.encoding)
        with self._send_lock:
            self._socket.sendall(data)

    def send_action(self, action, callback=None):
        if "ActionID" not in action.keys:
            action.keys["ActionID"] = self.next_action_id()
        return super().send_action(action, None)

    def fire_recv_pack(self, pack) -> None:
        try:
            super().fire_recv_pack(pack)
        except Exception:  # asterisk-ami's parsers raise on malformed packets, which would end the reader
            log.warning("ignored a malformed AMI packet (%d bytes)", len(pack))

    def fire_recv_event(self, event) -> None:
        for listener in list(self._event_listeners):
            try:
                listener(event=event, source=self)
            except Exception:
                log.exception("an AMI event listener failed on %s; event handling goes on", event.name)

    def listen(self) -> None:
        try:
            super().listen()
        except Exception as exc:  # banner mismatch or a socket error before the loop
            if not self.finished.is_set():  # not our own disconnect(), which wakes the reader with an error on purpose
                log.warning("AMI reader stopped: %s", exc or type(exc).__name__)
        finally:
            self.finished.set()


class AmiConnection:
    """One logged-in AMI link that stays up: ping, reconnect with backoff, then `on_reconnect`."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        on_event: Callable[[object], None],
        on_reconnect: Callable[[], None] = lambda: None,
        ping_interval: float = 2.0,
        timeout: float = 5.0,
        max_backoff: float = 5.0,
    ):
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.on_event, self.on_reconnect = on_event, on_reconnect
        self.ping_interval, self.timeout, self.max_backoff = ping_interval, timeout, max_backoff
        self._client: _PatchedClient | None = None
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.reconnects = 0
        self._lists: dict[str, tuple[list, threading.Event, str]] = {}

    def connect(self) -> None:
        self._client = self._login()
        self._supervisor = threading.Thread(target=self._supervise, name="ami-supervisor", daemon=True)
        self._supervisor.start()

    def _login(self) -> _PatchedClient:
        client = _PatchedClient(self.host, self.port, self.timeout)
        client.add_event_listener(self._dispatch)
        client.connect()
        try:
            response = client.send_action(SimpleAction("Login", Username=self.username, Secret=self._secret)).response
        except OSError as exc:  # the PBX dropped the connection as it was made (e.g. restarting)
            client.disconnect()
            raise TrunkError(f"AMI at {self.host}:{self.port} dropped the connection at login: {exc}") from exc
        if response is None:
            client.disconnect()
            raise TrunkError(f"AMI at {self.host}:{self.port} did not answer the login")
        if response.is_error():
            client.disconnect()
            raise TrunkError(
                f"AMI login refused for user {self.username!r}: "
                f"{response.keys.get('Message', 'check the username and secret')}"
            )
        return client

    def _dispatch(self, event, source=None) -> None:
        action_id = event.keys.get("ActionID")
        if action_id in self._lists:
            items, done, complete = self._lists[action_id]
            if event.name == complete:
                done.set()
            else:
                items.append(event)
            return
        self.on_event(event)

    def is_up(self) -> bool:
        client = self._client
        return client is not None and not client.finished.is_set()

    def send(self, action: Action):
        client = self._client
        if client is None or client.finished.is_set():
            raise TrunkError("AMI link is down")
        try:
            response = client.send_action(action).response
        except OSError as exc:
            raise TrunkError(f"AMI send failed: {exc}") from exc
        if response is None:
            raise TrunkError(f"AMI gave no response to {action.name} within {self.timeout} s")
        return response

    def send_list(self, action: Action, complete_event: str) -> list:
        """An action answered by a list of events, e.g. CoreShowChannels."""
        client = self._client
        if client is None:
            raise TrunkError("AMI link is down")
        action_id = client.next_action_id()
        action.keys["ActionID"] = action_id
        items: list = []
        done = threading.Event()
        self._lists[action_id] = (items, done, complete_event)
        try:
            response = self.send(action)
            if response.is_error():
                raise TrunkError(f"AMI refused {action.name}: {response.keys.get('Message', '')}")
            if not done.wait(self.timeout):
                raise TrunkError(f"AMI did not finish the {action.name} list within {self.timeout} s")
            return items
        finally:
            self._lists.pop(action_id, None)

    def ping(self) -> bool:
        try:
            return not self.send(SimpleAction("Ping")).is_error()
        except TrunkError:
            return False

    def _supervise(self) -> None:
        """Ping, and reconnect a dead link, until closed. Nothing may end this thread:
        the link would never come back."""
        backoff = 0.2
        while not self._closing.wait(self.ping_interval if backoff == 0.2 else backoff):
            try:
                backoff = self._keep_up(backoff)
            except Exception:
                log.exception("AMI supervisor failed unexpectedly; it tries again")
                backoff = min(self.max_backoff, backoff * 2)

    def _keep_up(self, backoff: float) -> float:
        """One look at the link: the backoff before the next."""
        if self._client is not None and not self._client.finished.is_set() and self.ping():
            return 0.2
        log.warning("AMI link to %s:%s lost; reconnecting", self.host, self.port)
        if self._client is not None:
            self._client.disconnect()
        try:
            self._client = self._login()
        except TrunkError as exc:
            log.warning("AMI reconnect failed: %s", exc)
            return min(self.max_backoff, backoff * 2)
        self.reconnects += 1
        try:
            self.on_reconnect()
        except Exception:
            log.exception("resync after AMI reconnect failed")
        return 0.2

    def close(self) -> None:
        self._closing.set()
        client = self._client
        if client is not None and not client.finished.is_set():
            try:
                client.send_action(SimpleAction("Logoff"))
            except OSError:
                pass
            client.disconnect()
        if self._supervisor:
            self._supervisor.join(timeout=self.ping_interval + 1)
