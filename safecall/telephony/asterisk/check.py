"""`safecall trunk check` for Asterisk: login and ping, the dialplan context, and Asterisk reaching FastAGI."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping

from asterisk.ami import SimpleAction

from safecall.errors import ConfigError, TrunkError
from safecall.errors import Message as M
from safecall.i18n import N_
from safecall.ivr import IvrFlow
from safecall.telephony.asterisk.ami import AmiConnection
from safecall.telephony.asterisk.channels import peer_addresses
from safecall.telephony.asterisk.config import AsteriskTrunkConfig
from safecall.telephony.asterisk.fastagi import FastAgiServer
from safecall.telephony.base import Check


class _Probe:
    """A FastAGI session that only notes which token reached it and from where, then hangs up."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}  # token -> the address the session came from
        self.arrived = threading.Event()

    def __call__(self, agi) -> None:
        self.seen[agi.env.get("agi_arg_1", "")] = agi.peer
        self.arrived.set()
        agi.hangup()


def check_asterisk(
    config: AsteriskTrunkConfig, environ: Mapping[str, str], flow: IvrFlow, wait_seconds: float = 10
) -> list[Check]:
    checks: list[Check] = []
    try:
        secret = config.ami_secret.resolve(environ)
    except ConfigError as exc:
        return [Check(M(N_("AMI secret")), False, exc.message())]
    ami = AmiConnection(
        config.ami_host, config.ami_port, config.ami_username, secret, on_event=lambda e: None, ping_interval=3600
    )
    try:
        ami.connect()
    except TrunkError as exc:
        return [Check(M(N_("AMI login")), False, exc.message())]
    try:
        checks.append(
            Check(
                M(N_("AMI login")),
                True,
                M(
                    N_("logged in to {host}:{port} as {user}"),
                    host=config.ami_host,
                    port=config.ami_port,
                    user=config.ami_username,
                ),
            )
        )
        checks.append(
            Check(M(N_("AMI ping")), ami.ping(), M(N_("Ping answered")) if ami.ping() else M(N_("Ping not answered")))
        )
        try:
            ami.send_list(SimpleAction("ShowDialPlan", Context=config.context), "ShowDialPlanComplete")
            checks.append(
                Check(M(N_("dialplan context")), True, M(N_("context {context!r} exists"), context=config.context))
            )
        except TrunkError as exc:
            checks.append(
                Check(
                    M(N_("dialplan context")),
                    False,
                    M(
                        N_(
                            "context {context!r} not found ({error}); "
                            "include ivr/asterisk/extensions_safecall.conf from extensions.conf and reload"
                        ),
                        context=config.context,
                        error=str(exc),
                    ),
                )
            )
        checks.append(_check_fastagi(ami, config, flow, wait_seconds))
    finally:
        ami.close()
    return checks


def _check_fastagi(ami: AmiConnection, config: AsteriskTrunkConfig, flow: IvrFlow, wait_seconds: float) -> Check:
    host, port = config.fastagi_address()
    probe = _Probe()
    try:
        server = FastAgiServer(host, port, probe).start()
    except OSError as exc:
        return Check(
            "FastAGI",
            False,
            M(
                N_("cannot listen on {host}:{port}: {error}; is a campaign running already?"),
                host=host,
                port=port,
                error=exc.strerror,
            ),
        )
    nonce = "check-" + secrets.token_urlsafe(12)
    try:
        action = SimpleAction(
            "Originate", Channel=f"Local/s@{config.context}", Application="Wait", Data="1", Async="true", Timeout=5000
        )
        action.variables = {"SAFECALL_ATTEMPT": nonce}
        response = ami.send(action)
        if response.is_error():
            return Check(
                "FastAGI",
                False,
                M(N_("Asterisk refused the test call: {error}"), error=response.keys.get("Message", "")),
            )
        deadline = time.monotonic() + wait_seconds
        while nonce not in probe.seen and probe.arrived.wait(max(0.0, deadline - time.monotonic())):
            probe.arrived.clear()
        if nonce in probe.seen:
            return _peer_check(config, host, port, probe.seen[nonce])
        return Check(
            "FastAGI",
            False,
            M(
                N_(
                    "Asterisk did not reach {host}:{port} within {seconds:.0f} s: "
                    "check the AGI() address in the dialplan and the firewall between Asterisk and SafeCall"
                ),
                host=host,
                port=port,
                seconds=wait_seconds,
            ),
        )
    finally:
        server.stop()


def _peer_check(config: AsteriskTrunkConfig, host: str, port: int, peer: str) -> Check:
    """Asterisk got through; the trunk serves only sessions from the PBX's address, so it must be this one."""
    try:
        allowed = peer_addresses(config.pbx_host())
    except ConfigError as exc:
        return Check("FastAGI", False, str(exc))
    if peer in allowed:
        return Check(
            "FastAGI",
            True,
            M(N_("Asterisk reached the FastAGI server at {host}:{port} from {peer}"), host=host, port=port, peer=peer),
        )
    return Check(
        "FastAGI",
        False,
        M(
            N_(
                "Asterisk reached {host}:{port} from {peer}, but the trunk serves FastAGI sessions only from "
                '{allowed} (pbx_address, default ami_host): set pbx_address = "{peer}"'
            ),
            host=host,
            port=port,
            peer=peer,
            allowed=", ".join(sorted(allowed)),
        ),
    )
