"""The Asterisk trunk: AMI for placing calls and their events, FastAGI for the IVR."""

from __future__ import annotations

from pathlib import Path

from safecall.telephony.asterisk.config import AsteriskTrunkConfig
from safecall.telephony.base import TrunkKind


def _build(config: AsteriskTrunkConfig, *, clock, sink, environ, root):
    from safecall.telephony.asterisk.prompts import sounds_dir
    from safecall.telephony.asterisk.trunk import AsteriskTrunk

    return AsteriskTrunk(config, clock, sink, environ, sounds=sounds_dir(Path(root) / "ivr") if root else None)


def _check(config: AsteriskTrunkConfig, *, environ, flow, wait_seconds: float = 10):
    from safecall.telephony.asterisk.check import check_asterisk

    return check_asterisk(config, environ, flow, wait_seconds)


KIND = TrunkKind(AsteriskTrunkConfig, _build, _check)
