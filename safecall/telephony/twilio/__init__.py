"""The Twilio trunk: calls created over its REST API, the IVR and call reports over signed webhooks."""

from __future__ import annotations

from safecall.telephony.base import TrunkKind
from safecall.telephony.twilio.config import TwilioTrunkConfig


def _build(config: TwilioTrunkConfig, *, clock, sink, environ, root):
    from safecall.telephony.twilio.trunk import TwilioTrunk

    return TwilioTrunk(config, clock, sink, environ)


def _check(config: TwilioTrunkConfig, *, environ, flow, wait_seconds: float = 10):
    from safecall.telephony.twilio.check import check_twilio

    return check_twilio(config, environ)


KIND = TrunkKind(TwilioTrunkConfig, _build, _check)
