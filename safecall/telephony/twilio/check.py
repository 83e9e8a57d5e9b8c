"""`safecall trunk check` for Twilio: credentials, the from number, and the public webhook URL."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException, TwilioRestException

from safecall.errors import ConfigError
from safecall.phones import mask_text
from safecall.telephony.twilio.config import TwilioTrunkConfig
from safecall.telephony.base import Check
from safecall.telephony.twilio.trunk import make_client


def check_twilio(config: TwilioTrunkConfig, environ: Mapping[str, str]) -> list[Check]:
    url = urlsplit(config.public_base_url)
    checks = [Check("webhook URL", url.scheme == "https" and bool(url.netloc),
                    f"{config.public_base_url} " + ("uses https" if url.scheme == "https" else "must be an https:// address Twilio can reach"))]
    try:
        client = make_client(config, config.auth_token.resolve(environ))
    except ConfigError as exc:
        return checks + [Check("credentials", False, str(exc))]
    try:
        account = client.api.v2010.accounts(config.account_sid).fetch()
        checks.append(Check("credentials", True, f"account {config.account_sid[:6]}… is {account.status}"))
    except TwilioRestException as exc:
        reason = "the account SID or auth token is wrong" if exc.status in (401, 403, 404) else exc.msg
        return checks + [Check("credentials", False, f"Twilio refused them: {reason}")]
    except TwilioException as exc:
        return checks + [Check("credentials", False, f"cannot reach Twilio: {mask_text(str(exc))}")]
    numbers = client.incoming_phone_numbers.list(phone_number=config.from_number, limit=5)
    owned = any(n.phone_number == config.from_number for n in numbers)
    checks.append(Check("from number", owned, f"{config.from_number} " + ("belongs to the account" if owned else "is not a number of this account")))
    return checks
