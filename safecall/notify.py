"""Messages out: e-mail through SMTP; SMS, LMS and 알림톡 through SOLAPI, or SMS through Twilio Messaging."""

from __future__ import annotations

import mimetypes
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from safecall import phones
from safecall.errors import ConfigError, SafeCallError
from safecall.settings import Instance, SmsSettings, SmtpSettings
from safecall.sms_text import ALIMTALK_TEXTS, SMS_LIMIT_BYTES, euc_kr_bytes, fit_in_one_sms, sms_type  # noqa: F401 (re-exported)
from safecall.telephony.twilio.config import TwilioTrunkConfig


class DeliveryError(SafeCallError):
    """A message could not be handed over; it will be retried."""


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, body: str, attachments: Sequence[Path] = ()) -> None: ...


class SmtpMailer:
    def __init__(self, settings: SmtpSettings, environ: Mapping[str, str]):
        self.settings = settings
        self._password = settings.password.resolve(environ) if settings.password else None

    def send(self, to: list[str], subject: str, body: str, attachments: Sequence[Path] = ()) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.settings.sender, ", ".join(to), subject
        message.set_content(body)
        for path in attachments:
            kind, _ = mimetypes.guess_type(path.name)
            maintype, subtype = (kind or "application/octet-stream").split("/", 1)
            message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
        s = self.settings
        client: smtplib.SMTP
        try:
            if s.security == "tls":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
                )
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


LMS_SUBJECT = "안심콜 알림"
# SOLAPI's message status codes (docs: message-status-codes): 2000 accepted, 3000 with the carrier, 4000 done;
# any other code is a failure, said in its message.
PENDING_CODES = {"2000": "정상 접수", "3000": "이통사로 접수"}
DELIVERED_CODE = "4000"
ALIMTALK_VARIABLES = {
    "name": "#{이름}",
    "callback": "#{회신번호}",
    "time": "#{시각}",
    "caller": "#{발신번호}",
    "link": "#{링크}",
}


@dataclass(frozen=True)
class SmsMessage:
    to: str  # E.164
    text: str
    template: str | None = None  # which campaign text (guardian_unreachable, guardian_help): its 알림톡 template
    variables: Mapping[str, str] = field(default_factory=dict)  # name, callback


@dataclass(frozen=True)
class DeliveryReport:
    done: bool  # False: the provider is still waiting for the carrier
    delivered: bool
    status: str  # e.g. "4000 발송 처리 완료 (LMS)", "3043 단말기 Power off"


class SmsSender(Protocol):
    def send(self, message: SmsMessage) -> str | None:
        """Hand the message over; its provider id when its delivery can be read back, else None."""

    def report(self, provider_id: str) -> DeliveryReport: ...


class SolapiSms:
    """Domestic SMS/LMS and 알림톡 (with an SMS fallback) through SOLAPI's SDK, from a registered 발신번호."""

    def __init__(self, settings: SmsSettings, environ: Mapping[str, str]):
        from solapi import SolapiMessageService

        # Provider solapi requires a key, a secret and a sender (SmsSettings._complete).
        assert settings.api_key is not None and settings.api_secret is not None and settings.sender is not None
        self.settings, self.sender = settings, settings.sender
        self.service = SolapiMessageService(settings.api_key.resolve(environ), settings.api_secret.resolve(environ))
        self.service.base_url = settings.base_url  # the SDK builds every URL from it; tests point it at a fake

    def request(self, message: SmsMessage):
        """The SDK's message: 알림톡 when the text has an approved template, else SMS or LMS by its EUC-KR length."""
        from solapi.model import RequestMessage
        from solapi.model.kakao.kakao_option import KakaoOption

        sender, to = _domestic(self.sender), _domestic(message.to)
        alimtalk = self.settings.alimtalk
        template_id = getattr(alimtalk, message.template) if alimtalk and message.template in ALIMTALK_TEXTS else None
        if alimtalk and template_id:
            variables = {ALIMTALK_VARIABLES[k]: v for k, v in message.variables.items() if k in ALIMTALK_VARIABLES}
            # disable_sms False: a guardian without KakaoTalk gets the same text as SMS/LMS from the sender number.
            options = KakaoOption(pf_id=alimtalk.pf_id, template_id=template_id, variables=variables, disable_sms=False)
            return RequestMessage(from_=sender, to=to, type="ATA", kakao_options=options, auto_type_detect=False)
        kind = sms_type(message.text)
        return RequestMessage(
            from_=sender,
            to=to,
            text=message.text,
            type=kind,
            auto_type_detect=False,
            subject=LMS_SUBJECT if kind == "LMS" else None,
        )

    def send(self, message: SmsMessage) -> str | None:
        from solapi.error.MessageNotReceiveError import MessageNotReceivedError
        from solapi.model.request.send_message_request import SendRequestConfig

        try:
            request = self.request(message)
        except ValueError as exc:  # a number that is not a phone number
            raise DeliveryError(f"SOLAPI: {phones.mask_text(str(exc))}") from exc
        try:
            # show_message_list: the answer then lists the message with its id, to read its delivery report by.
            response = self.service.send(request, SendRequestConfig(show_message_list=True))
        except MessageNotReceivedError as exc:
            refused = "; ".join(f"{m.status_code} {m.status_message}" for m in exc.failed_messages)
            raise DeliveryError(f"SOLAPI refused the message: {phones.mask_text(refused)}") from exc
        except Exception as exc:  # the SDK raises bare Exception for HTTP errors, httpx's for the network
            raise DeliveryError(f"SOLAPI: {phones.mask_text(_exception_text(exc))}") from exc
        [item] = response.message_list or [None]
        if item is None:
            raise DeliveryError(f"SOLAPI accepted no message (group {response.group_info.group_id})")
        return item.message_id

    def report(self, provider_id: str) -> DeliveryReport:
        from solapi.model.request.messages.get_messages import GetMessagesRequest

        try:
            found = self.service.get_messages(GetMessagesRequest(message_id=provider_id)).message_list
        except Exception as exc:
            raise DeliveryError(f"SOLAPI status of {provider_id}: {phones.mask_text(_exception_text(exc))}") from exc
        message = found.get(provider_id)
        if message is None:
            raise DeliveryError(f"SOLAPI has no message {provider_id}")
        code, kind = message.status_code or "", message.type
        if code in PENDING_CODES:
            return DeliveryReport(done=False, delivered=False, status=f"{code} {PENDING_CODES[code]}")
        said = f": {_last_log(message.log)}" if message.log else ""  # e.g. that it went as SMS (대체 발송)
        if code == DELIVERED_CODE:
            return DeliveryReport(done=True, delivered=True, status=f"{code} 발송 처리 완료 ({kind}){said}")
        return DeliveryReport(done=True, delivered=False, status=f"{code} 발송 실패 ({kind}){said}")


def _domestic(number: str) -> str:
    """01012345678: SOLAPI takes Korean numbers in national form, digits only."""
    national = phones.national(phones.normalise(number))
    return "".join(c for c in national if c.isdigit())


def _exception_text(exc: Exception) -> str:
    return " ".join(str(arg) for arg in exc.args) if exc.args else type(exc).__name__


def _last_log(log: list[dict]) -> str:
    return phones.mask_text(str(log[-1].get("message", "")))[:200]


class TwilioSms:
    def __init__(self, config: TwilioTrunkConfig, environ: Mapping[str, str]):
        from safecall.telephony.twilio.client import make_client

        self.config = config
        self.client = make_client(config, config.auth_token.resolve(environ))

    def send(self, message: SmsMessage) -> str | None:
        from twilio.base.exceptions import TwilioException

        try:
            self.client.messages.create(to=message.to, from_=self.config.from_number, body=message.text)
        except TwilioException as exc:
            raise DeliveryError(f"Twilio messaging: {phones.mask_text(str(exc))}") from exc
        return None  # handed over; its delivery is not read back

    def report(self, provider_id: str) -> DeliveryReport:
        # Only a text sent through another provider (before [sms] changed) has an id to ask about.
        raise DeliveryError(f"Twilio messaging cannot report on {provider_id}, sent through another provider")


def build_mailer(instance: Instance) -> Mailer | None:
    smtp = instance.settings.smtp
    return SmtpMailer(smtp, instance.environ) if smtp else None


def build_sms(instance: Instance) -> SmsSender | None:
    sms = instance.settings.sms
    if sms.provider == "solapi":
        return SolapiSms(sms, instance.environ)
    if sms.provider == "twilio":
        trunk = instance.trunk(sms.twilio_trunk)
        if not isinstance(trunk, TwilioTrunkConfig):
            raise ConfigError(
                f"config/safecall.toml: key 'sms.twilio_trunk': {sms.twilio_trunk!r} is not a twilio trunk"
            )
        return TwilioSms(trunk, instance.environ)
    return None
