"""Phone numbers inside provider and mail-server error texts, and passwords inside database URLs, never shown whole."""

from __future__ import annotations

import logging

import pytest
from live import free_port
from solapi_fake import API_KEY, API_SECRET, sms_table
from sqlmodel import select
from twilio_fake import FROM, SID, TOKEN, FakeTwilio
from typer.testing import CliRunner

from safecall import phones
from safecall.cli import create_app
from safecall.escalation import send_notifications
from safecall.notify import DeliveryError, SmsMessage, TwilioSms, build_sms
from safecall.settings import load_instance, mask_url
from safecall.store import Database, OutboxMessage
from safecall.telephony.twilio.config import TwilioTrunkConfig

GUARDIAN = "+821009990002"
WHOLE = ("+821009990002", "821009990002", "01009990002", "010-0999-0002", "1009990002", "010 0999 0002")


def shows_no_whole_number(text: str) -> bool:
    return not any(form in text for form in WHOLE)


@pytest.mark.parametrize(
    "text, masked",
    [
        ("The number +821009990002 is unverified.", "The number +********0002 is unverified."),
        (
            "<01009990002@sms.example.org>: Recipient address rejected",
            "<*******0002@sms.example.org>: Recipient address rejected",
        ),
        ("010-0999-0002로 보낼 수 없음", "***-****-0002로 보낼 수 없음"),
        ("번호 010 0999 0002, (02) 123-4567, 02-123-4567", "번호 *** **** 0002, (**) ***-4567, **-***-4567"),
        # Not numbers of people: left as they are.
        ("on 2026-11-23 from 192.168.100.200:25, error 21608, call CA0123456789012345678901", None),
    ],
)
def test_every_phone_number_in_a_text_is_masked_and_nothing_else(text, masked):
    assert phones.mask_text(text) == (masked or text)


def test_a_refused_guardian_sms_is_stored_and_logged_without_the_number(cli, solapi, caplog):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + sms_table(solapi.base_url), encoding="utf-8")
    instance = load_instance(cli.root, {"SOLAPI_KEY": API_KEY, "SOLAPI_SECRET": API_SECRET})
    sms = build_sms(instance)
    solapi.send_failures += [(400, "수신번호 01009990002 (010-0999-0002)는 수신 거부 상태입니다")] * 2
    with pytest.raises(DeliveryError) as refused:
        sms.send(SmsMessage(GUARDIAN, "안부 전화에 응답하지 않으셨습니다"))
    assert "수신 거부" in str(refused.value) and "*******0002" in str(refused.value)
    assert shows_no_whole_number(str(refused.value))

    db = cli.db()
    with db.transaction() as session:
        session.add(
            OutboxMessage(
                key="guardian:task:1",
                kind="guardian_text",
                channel="sms",
                recipient=GUARDIAN,
                body="안부",
                next_try_at=cli.clock.now(),
            )
        )
    with caplog.at_level(logging.DEBUG):
        send_notifications(db, instance.settings, None, sms, now=cli.clock.now())
    with db.session() as session:
        [note] = session.exec(select(OutboxMessage))
    assert note.status == "pending" and "수신 거부" in note.last_error
    assert shows_no_whole_number(note.last_error)
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("safecall"))
    assert "notification_retry" in logged and shows_no_whole_number(logged)


def test_a_twilio_messaging_error_does_not_carry_the_number(tmp_path):
    fake = FakeTwilio("https://safecall.example.org", "http://127.0.0.1:1", {}).start()
    try:
        fake.unverified.add(GUARDIAN)
        config = TwilioTrunkConfig(
            type="twilio",
            account_sid=SID,
            auth_token={"env": "TOKEN"},
            from_number=FROM,
            public_base_url="https://safecall.example.org",
            api_base_url=fake.base_url,
        )
        with pytest.raises(DeliveryError) as refused:
            TwilioSms(config, {"TOKEN": TOKEN}).send(SmsMessage(GUARDIAN, "안부"))
    finally:
        fake.stop()
    assert "is unverified" in str(refused.value) and "+********0002" in str(refused.value)
    assert shows_no_whole_number(str(refused.value))


SECRET_URL = "postgresql+psycopg://safecall:userinfo2secret@127.0.0.1:{port}/safecall?password=query2secret&sslpassword=ssl2secret&connect_timeout=2"


@pytest.mark.parametrize(
    "command", [["config", "show"], ["config", "show", "--json"], ["db", "status"], ["recipients", "list"], ["doctor"]]
)
def test_no_password_of_the_database_url_is_shown_by_any_command(cli, command):
    port = free_port()  # nothing listens there: every database command fails, and says why
    app = create_app(make_clock=lambda: cli.clock, environ={"SAFECALL_DATABASE_URL": SECRET_URL.format(port=port)})
    result = CliRunner().invoke(app, ["--config", str(cli.root), *command])
    text = result.output + (
        repr(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else ""
    )
    for secret in ("userinfo2secret", "query2secret", "ssl2secret"):
        assert secret not in text, text
    assert "Traceback" not in text
    if command[0] == "config":
        assert result.exit_code == 0 and f"127.0.0.1:{port}/safecall" in text and "password=***" in text
    else:
        assert result.exit_code == 1 and f"127.0.0.1:{port}" in text


def test_a_password_in_the_query_written_in_the_settings_file_is_refused(cli):
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace(
            "sqlite:///data/safecall.db", "postgresql://u@127.0.0.1/db?password=query2secret"
        ),
        encoding="utf-8",
    )
    result = cli("config", "show", ok=False)
    assert result.exit_code == 1 and "key 'database_url': a password may not be written in the file" in result.output
    assert "query2secret" not in result.output


def test_a_driver_message_holding_the_password_is_cleaned(tmp_path):
    db = Database(SECRET_URL.format(port=1))
    text = db.error_text(
        Exception('invalid dsn: "password=query2secret sslpassword=ssl2secret" (user safecall:userinfo2secret)')
    )
    assert "secret" not in text.replace("***", "") and text.count("***") >= 3
    assert (
        mask_url(db.url)
        == "postgresql+psycopg://safecall:***@127.0.0.1:1/safecall?connect_timeout=2&password=***&sslpassword=***"
    )
