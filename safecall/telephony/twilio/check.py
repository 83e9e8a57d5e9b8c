"""`safecall trunk check` for Twilio: credentials, the from number, and the public webhook URL."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException, TwilioRestException

from safecall.errors import ConfigError
from safecall.errors import Message as M
from safecall.i18n import N_
from safecall.phones import mask_text
from safecall.telephony.base import Check
from safecall.telephony.twilio.client import make_client
from safecall.telephony.twilio.config import TwilioTrunkConfig


def check_twilio(config: TwilioTrunkConfig, environ: Mapping[str, str]) -> list[Check]:
    url = urlsplit(config.public_base_url)
    checks = [
        Check(
            M(N_("webhook URL")),
            url.scheme == "https" and bool(url.netloc),
            M(N_("{url} uses https"), url=config.public_base_url)
            if url.scheme == "https"
            else M(N_("{url} must be an https:// address Twilio can reach"), url=config.public_base_url),
        )
    ]
    try:
        client = make_client(config, config.auth_token.resolve(environ))
    except ConfigError as exc:
        return checks + [Check(M(N_("credentials")), False, str(exc))]
    try:
        account = client.api.v2010.accounts(config.account_sid).fetch()
        checks.append(
            Check(
                M(N_("credentials")),
                True,
                M(N_("account {sid}… is {status}"), sid=config.account_sid[:6], status=account.status),
            )
        )
    except TwilioRestException as exc:
        reason = M(N_("the account SID or auth token is wrong")) if exc.status in (401, 403, 404) else exc.msg
        return checks + [Check(M(N_("credentials")), False, M(N_("Twilio refused them: {reason}"), reason=reason))]
    except TwilioException as exc:
        return checks + [
            Check(M(N_("credentials")), False, M(N_("cannot reach Twilio: {error}"), error=mask_text(str(exc))))
        ]
    numbers = client.incoming_phone_numbers.list(phone_number=config.from_number, limit=5)
    owned = any(n.phone_number == config.from_number for n in numbers)
    checks.append(
        Check(
            M(N_("from number")),
            owned,
            M(N_("{number} belongs to the account"), number=config.from_number)
            if owned
            else M(N_("{number} is not a number of this account"), number=config.from_number),
        )
    )
    return checks
