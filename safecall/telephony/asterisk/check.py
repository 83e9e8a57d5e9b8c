"""`safecall trunk check` for Asterisk: login and ping, the dialplan context, and Asterisk reaching FastAGI."""

from __future__ import annotations

import secrets
import threading
from typing import Mapping

from asterisk.ami import SimpleAction

from safecall.clock import SystemClock
from safecall.errors import ConfigError, TrunkError
from safecall.ivr import IvrFlow
from safecall.telephony.asterisk.config import AsteriskTrunkConfig
from safecall.telephony.asterisk.ami import AmiConnection
from safecall.telephony.asterisk.fastagi import FastAgiServer
from safecall.telephony.base import Check


class _Probe:
    """A FastAGI sink that only notes which token reached it, then has the call hung up."""

    def __init__(self):
        self.seen: set[str] = set()
        self.arrived = threading.Event()

    def live_call(self, token: str) -> None:
        self.seen.add(token)
        self.arrived.set()
        return None

    def record_keypress(self, *args) -> bool:
        return False


def check_asterisk(config: AsteriskTrunkConfig, environ: Mapping[str, str], flow: IvrFlow, wait_seconds: float = 10) -> list[Check]:
    checks: list[Check] = []
    try:
        secret = config.ami_secret.resolve(environ)
    except ConfigError as exc:
        return [Check("AMI secret", False, str(exc))]
    ami = AmiConnection(config.ami_host, config.ami_port, config.ami_username, secret, on_event=lambda e: None,
                        ping_interval=3600)
    try:
        ami.connect()
    except TrunkError as exc:
        return [Check("AMI login", False, str(exc))]
    try:
        checks.append(Check("AMI login", True, f"logged in to {config.ami_host}:{config.ami_port} as {config.ami_username}"))
        checks.append(Check("AMI ping", ami.ping(), "Ping answered" if ami.ping() else "Ping not answered"))
        try:
            ami.send_list(SimpleAction("ShowDialPlan", Context=config.context), "ShowDialPlanComplete")
            checks.append(Check("dialplan context", True, f"context {config.context!r} exists"))
        except TrunkError as exc:
            checks.append(Check("dialplan context", False, f"context {config.context!r} not found ({exc}); "
                                "include ivr/asterisk/extensions_safecall.conf from extensions.conf and reload"))
        checks.append(_check_fastagi(ami, config, flow, wait_seconds))
    finally:
        ami.close()
    return checks


def _check_fastagi(ami: AmiConnection, config: AsteriskTrunkConfig, flow: IvrFlow, wait_seconds: float) -> Check:
    host, port = config.fastagi_address()
    probe = _Probe()
    try:
        server = FastAgiServer(host, port, probe, SystemClock().now).start()
    except OSError as exc:
        return Check("FastAGI", False, f"cannot listen on {host}:{port}: {exc.strerror}; is a campaign running already?")
    nonce = "check-" + secrets.token_urlsafe(12)
    try:
        action = SimpleAction("Originate", Channel=f"Local/s@{config.context}", Application="Wait", Data="1",
                              Async="true", Timeout=5000)
        action.variables = {"SAFECALL_ATTEMPT": nonce}
        response = ami.send(action)
        if response.is_error():
            return Check("FastAGI", False, f"Asterisk refused the test call: {response.keys.get('Message', '')}")
        if probe.arrived.wait(wait_seconds) and nonce in probe.seen:
            return Check("FastAGI", True, f"Asterisk reached the FastAGI server at {host}:{port}")
        return Check("FastAGI", False, f"Asterisk did not reach {host}:{port} within {wait_seconds:.0f} s: "
                     "check the AGI() address in the dialplan and the firewall between Asterisk and SafeCall")
    finally:
        server.stop()
