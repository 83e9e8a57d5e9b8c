"""SafeCall's own channels as AMI tells of them: the id an Originate gives a call, its name, and whether it is up.

A FastAGI session names its channel (agi_uniqueid, agi_channel) and the attempt token. The token alone is not
proof: it shows in AMI VarSet events, the verbose log and `core show channels`. What Asterisk says over AMI is,
so a session counts only for the channel placed for its attempt, once AMI has said that channel was answered.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass

from safecall.errors import ConfigError

PREFIX = "sc-"
UP = "6"  # AST_STATE_UP, as ChannelState in Newstate and CoreShowChannel
ANSWERED_REASON = "4"  # OriginateResponse Reason: answered


def channel_id_for(token: str) -> str:
    """The ChannelId of the attempt's Originate, hence its channel's Uniqueid (and agi_uniqueid),
    without revealing the token."""
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()[:24]


def peer_addresses(host: str) -> frozenset[str]:
    """Every address `host` resolves to: where the PBX's FastAGI connections may come from."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"the PBX address {host!r} does not resolve: {exc}") from exc
    return frozenset(plain_address(str(info[4][0])) for info in infos)  # an IP address: str for these families


def plain_address(address: str) -> str:
    """An IPv4 peer seen through an IPv6 socket (::ffff:10.0.0.5) as the IPv4 address."""
    return address[7:] if address.startswith("::ffff:") and "." in address else address


@dataclass
class _Channel:
    name: str | None = None
    up: bool = False


class ChannelWatch:
    """Fed every AMI event; keeps the channels whose Uniqueid is one of SafeCall's until their Hangup."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._channels: dict[str, _Channel] = {}

    def on_event(self, name: str, keys: dict) -> None:
        uid = keys.get("Uniqueid", "")
        if not uid.startswith(PREFIX) or ";" in uid:  # ";2" is the far half of a Local channel, not the call
            return
        with self._changed:
            if name == "Hangup":
                self._channels.pop(uid, None)
                return
            if name not in ("Newchannel", "Newstate", "Rename", "OriginateResponse", "CoreShowChannel"):
                return
            channel = self._channels.setdefault(uid, _Channel())
            if name == "Rename":
                channel.name = keys.get("Newname") or channel.name
            elif name != "OriginateResponse":  # its Channel is the dial string when the call failed
                channel.name = keys.get("Channel") or channel.name
            if keys.get("ChannelState") == UP or (
                name == "OriginateResponse" and keys.get("Reason") == ANSWERED_REASON
            ):
                channel.up = True
            self._changed.notify_all()

    def known(self) -> set[str]:
        with self._changed:
            return set(self._channels)

    def forget(self, uids: set[str]) -> None:
        """Channels Asterisk no longer has (their Hangup was lost while the link was down)."""
        with self._changed:
            for uid in uids:
                self._channels.pop(uid, None)

    def answered(self, uid: str, channel_name: str, wait_seconds: float) -> bool:
        """Whether `uid` is a live, answered channel named `channel_name`; waits up to `wait_seconds` for the answer
        to be told (a FastAGI session may arrive just before the AMI event that says the call was answered)."""
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            while True:
                channel = self._channels.get(uid)
                if channel is not None and channel.up:
                    return channel.name in (None, channel_name)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)

    def __len__(self) -> int:
        return len(self._channels)
