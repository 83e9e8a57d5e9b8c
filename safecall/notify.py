"""Messages out: e-mail through SMTP, and SMS through Twilio messaging or an e-mail-to-SMS gateway."""

from __future__ import annotations

import mimetypes
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Mapping, Protocol

from safecall import phones
from safecall.errors import ConfigError, SafeCallError
from safecall.settings import Instance, SmtpSettings
from safecall.telephony.twilio.config import TwilioTrunkConfig


class DeliveryError(SafeCallError):
    """A message could not be handed over; it will be retried."""


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, body: str, attachments: list[Path] = ()) -> None: ...


class SmsSender(Protocol):
    def send(self, number: str, text: str) -> None: ...


class SmtpMailer:
    def __init__(self, settings: SmtpSettings, environ: Mapping[str, str]):
        self.settings = settings
        self._password = settings.password.resolve(environ) if settings.password else None

    def send(self, to: list[str], subject: str, body: str, attachments: list[Path] = ()) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.settings.sender, ", ".join(to), subject
        message.set_content(body)
        for path in attachments:
            kind, _ = mimetypes.guess_type(path.name)
            maintype, subtype = (kind or "application/octet-stream").split("/", 1)
            message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
        s = self.settings
        try:
            if s.security == "tls":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            with client:
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.username:
                    client.login(s.username, self._password or "")
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            # A refused e-mail-to-SMS address carries the guardian's number.
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {phones.mask_text(str(exc))}") from exc


class EmailGatewaySms:
    def __init__(self, mailer: Mailer, address_template: str):
        self.mailer, self.template = mailer, address_template

    def send(self, number: str, text: str) -> None:
        digits = "".join(c for c in phones.national(number) if c.isdigit())
        self.mailer.send([self.template.format(number=digits)], "안심콜 알림", text)


class TwilioSms:
    def __init__(self, config: TwilioTrunkConfig, environ: Mapping[str, str]):
        from safecall.telephony.twilio.trunk import make_client

        self.config = config
        self.client = make_client(config, config.auth_token.resolve(environ))

    def send(self, number: str, text: str) -> None:
        from twilio.base.exceptions import TwilioException

        try:
            self.client.messages.create(to=number, from_=self.config.from_number, body=text)
        except TwilioException as exc:
            raise DeliveryError(f"Twilio messaging: {phones.mask_text(str(exc))}") from exc


def build_mailer(instance: Instance) -> Mailer | None:
    smtp = instance.settings.smtp
    return SmtpMailer(smtp, instance.environ) if smtp else None


def build_sms(instance: Instance, mailer: Mailer | None) -> SmsSender | None:
    sms = instance.settings.sms
    if sms.provider == "email_gateway":
        if mailer is None:
            raise ConfigError("config/safecall.toml: key 'sms.provider': email_gateway needs an [smtp] section")
        return EmailGatewaySms(mailer, sms.gateway_address)
    if sms.provider == "twilio":
        trunk = instance.trunk(sms.twilio_trunk)
        if not isinstance(trunk, TwilioTrunkConfig):
            raise ConfigError(f"config/safecall.toml: key 'sms.twilio_trunk': {sms.twilio_trunk!r} is not a twilio trunk")
        return TwilioSms(trunk, instance.environ)
    return None
