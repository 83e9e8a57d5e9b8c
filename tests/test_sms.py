"""Domestic SMS, LMS and 알림톡 through SOLAPI's SDK, against a local fake of SOLAPI's REST API (issue 20)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from conftest import person_row, scripted_trunks, write_csv
from solapi_fake import API_KEY, API_SECRET, PF_ID, SENDER, FakeSolapi, sms_table
from sqlmodel import select

from safecall.campaign import load_campaign
from safecall.escalation import queue_escalations, send_notifications
from safecall.notify import DeliveryError, SmsMessage, SolapiSms, build_sms, euc_kr_bytes
from safecall.settings import SmsSettings, load_instance
from safecall.store import OutboxMessage, VisitTask

GUARDIAN = "+821009990002"
GUARDIAN_DOMESTIC = "01009990002"
ENV = {"SOLAPI_KEY": API_KEY, "SOLAPI_SECRET": API_SECRET}
ALIMTALK = {"pf_id": PF_ID, "guardian_unreachable": "KA01TP0000UNREACHABLE", "guardian_help": "KA01TP000000000000HELP"}


def sms_settings(fake: FakeSolapi, **extra) -> SmsSettings:
    return SmsSettings(
        provider="solapi",
        api_key={"env": "SOLAPI_KEY"},
        api_secret={"env": "SOLAPI_SECRET"},
        sender="02-2148-1234",
        callback_number="02-2148-1234",
        base_url=fake.base_url,
        **extra,
    )


def configure(cli, fake: FakeSolapi, alimtalk: bool = False) -> None:
    settings = cli.root / "config" / "safecall.toml"
    table = "\n[sms.alimtalk]\n" + "\n".join(f'{k} = "{v}"' for k, v in ALIMTALK.items()) if alimtalk else ""
    settings.write_text(settings.read_text(encoding="utf-8") + sms_table(fake.base_url) + table, encoding="utf-8")


def text_of_bytes(size: int) -> str:
    text = "가" * (size // 2) + "a" * (size % 2)
    assert euc_kr_bytes(text) == size
    return text


def test_90_euc_kr_bytes_go_as_one_sms_and_91_as_an_lms(solapi):
    sender = SolapiSms(sms_settings(solapi), ENV)
    for size in (90, 91):
        sender.send(SmsMessage(GUARDIAN, text_of_bytes(size)))
    [short], [long] = (request["messages"] for request in solapi.requests)
    assert (short["type"], short["to"], short["from"], short["text"]) == ("SMS", GUARDIAN_DOMESTIC, SENDER, "가" * 45)
    assert "subject" not in short
    assert long["type"] == "LMS" and long["subject"] == "안심콜 알림" and long["text"] == "가" * 45 + "a"
    assert all(not m.get("autoTypeDetect") for m in (short, long))
    # Hangul outside EUC-KR (똠) is still counted as a syllable's two bytes.
    assert euc_kr_bytes("똠" * 45) == 90 and euc_kr_bytes("똠" * 45 + "a") == 91


def test_the_fake_refuses_what_solapi_refuses(solapi):
    """The fake is strict: an over-long SMS, an unregistered
    sender and a wrong secret are refused with SOLAPI's codes."""
    from solapi.error.MessageNotReceiveError import MessageNotReceivedError
    from solapi.model import RequestMessage

    sender = SolapiSms(sms_settings(solapi), ENV)
    with pytest.raises(MessageNotReceivedError) as refused:
        sender.service.send(RequestMessage(from_=SENDER, to=GUARDIAN_DOMESTIC, text=text_of_bytes(91), type="SMS"))
    assert [m.status_code for m in refused.value.failed_messages] == ["1031"]
    with pytest.raises(DeliveryError, match="1062"):
        SolapiSms(sms_settings(solapi).model_copy(update={"sender": "02-2148-9999"}), ENV).send(
            SmsMessage(GUARDIAN, "안부")
        )
    with pytest.raises(DeliveryError, match="SignatureDoesNotMatch"):
        SolapiSms(sms_settings(solapi), {**ENV, "SOLAPI_SECRET": "not-the-secret"}).send(SmsMessage(GUARDIAN, "안부"))
    assert solapi.refusals == ["SignatureDoesNotMatch"]


def signed(date: str, salt: str, secret: str = API_SECRET) -> dict:
    """The Authorization header as SOLAPI's docs write it: HMAC-SHA256(secret, date + salt) in hex."""
    signature = hmac.new(secret.encode(), (date + salt).encode(), hashlib.sha256).hexdigest()
    return {"Authorization": f"HMAC-SHA256 apiKey={API_KEY}, date={date}, salt={salt}, signature={signature}"}


def test_the_fake_checks_the_authorization_header_as_documented(solapi):
    url = f"{solapi.base_url}/messages/v4/list?messageId=M4V0"
    now = datetime.now(UTC)
    fresh = signed(now.strftime("%Y-%m-%dT%H:%M:%SZ"), "jqsba2jxjnrjor")
    assert httpx.get(url, headers=fresh).status_code == 200
    assert httpx.get(url, headers=fresh).json()["errorCode"] == "DuplicatedSignature"
    skewed = signed((now - timedelta(minutes=16)).isoformat(), "jqsba2jxjnrjor")
    assert httpx.get(url, headers=skewed).json()["errorCode"] == "RequestTimeTooSkewed"
    assert httpx.get(url, headers=signed(now.isoformat(), "short")).status_code == 403  # a salt of 12 to 64
    assert (
        httpx.get(url, headers=signed(now.isoformat(), "jqsba2jxjnrjor", "wrong")).json()["errorCode"]
        == "SignatureDoesNotMatch"
    )
    assert httpx.get(url).status_code == 401


def test_a_server_error_or_no_server_is_a_delivery_error(solapi):
    sender = SolapiSms(sms_settings(solapi), ENV)
    solapi.send_failures.append((500, "server down"))
    with pytest.raises(DeliveryError, match="SOLAPI: UnknownError"):
        sender.send(SmsMessage(GUARDIAN, "안부"))
    with pytest.raises(DeliveryError, match="not a phone number"):
        sender.send(SmsMessage("전화 없음", "안부"))
    solapi.stop()
    with pytest.raises(DeliveryError, match="SOLAPI"):
        sender.send(SmsMessage(GUARDIAN, "안부"))


def queue_one(cli, *, template: str | None = None, body: str = "[안심콜] 홍길동님 안부") -> None:
    variables = json.dumps({"name": "홍길동", "callback": "02-2148-1234"}, ensure_ascii=False) if template else None
    with cli.db().transaction() as session:
        session.add(
            OutboxMessage(
                key="guardian:person:1:week:2026-11-23",
                kind="guardian_text",
                channel="sms",
                recipient=GUARDIAN,
                body=body,
                next_try_at=cli.clock.now(),
                template=template,
                variables=variables,
            )
        )


def note_of(cli) -> OutboxMessage:
    with cli.db().session() as session:
        return session.exec(select(OutboxMessage)).one()


def tick(cli, sms, minutes: float = 0) -> OutboxMessage:
    cli.clock.set(cli.clock.now() + timedelta(minutes=minutes))
    send_notifications(cli.db(), load_instance(cli.root, ENV).settings, None, sms, now=cli.clock.now())
    return note_of(cli)


def test_alimtalk_with_its_sms_fallback_is_followed_to_delivery(cli, solapi):
    configure(cli, solapi, alimtalk=True)
    sms = build_sms(load_instance(cli.root, ENV))
    solapi.no_kakao.add(GUARDIAN_DOMESTIC)
    queue_one(cli, template="guardian_unreachable")
    note = tick(cli, sms)
    [message] = solapi.requests[0]["messages"]
    assert message["type"] == "ATA" and message["from"] == SENDER and message["to"] == GUARDIAN_DOMESTIC
    assert message["kakaoOptions"] == {
        "pfId": PF_ID,
        "templateId": "KA01TP0000UNREACHABLE",
        "disableSms": False,
        "variables": {"#{이름}": "홍길동", "#{회신번호}": "02-2148-1234"},
    }
    assert note.status == "sent" and note.provider_id and note.delivery_status is None
    assert tick(cli, sms).status == "sent"  # the report is asked for a minute later, not at once
    note = tick(cli, sms, minutes=1)
    assert (note.status, note.delivery_status) == ("sent", "3000 이통사로 접수")
    note = tick(cli, sms, minutes=1)
    assert note.status == "delivered" and note.delivered_at is not None
    assert note.delivery_status.startswith("4000 발송 처리 완료 (ATA)") and "SMS로 대체 발송" in note.delivery_status
    [received] = solapi.handsets[GUARDIAN_DOMESTIC]
    assert received == {
        "type": "SMS",
        "replacement": True,
        "text": "[안심콜] 홍길동님이 안부 전화에 응답하지 않아 담당자가 방문합니다. 문의 02-2148-1234",
    }
    assert len(solapi.requests) == 1


def test_a_text_with_no_template_goes_as_sms_even_with_alimtalk(cli, solapi):
    configure(cli, solapi, alimtalk=True)
    queue_one(cli)
    tick(cli, build_sms(load_instance(cli.root, ENV)))
    assert solapi.requests[0]["messages"][0]["type"] == "SMS"


def test_undelivered_and_refused_texts_are_sent_again_and_reported(cli, solapi, caplog):
    configure(cli, solapi)
    sms = build_sms(load_instance(cli.root, ENV))
    solapi.send_failures.append((503, "server down"))
    solapi.outcomes[GUARDIAN_DOMESTIC] = ["3043"]  # the first text that gets through finds the phone off
    queue_one(cli)
    with caplog.at_level(logging.INFO):
        note = tick(cli, sms)
        assert (note.status, note.attempts) == ("pending", 1) and "SOLAPI" in note.last_error
        note = tick(cli, sms, minutes=10)  # retry_minutes
        assert note.status == "sent" and note.attempts == 2
        tick(cli, sms, minutes=1)
        note = tick(cli, sms, minutes=1)
        assert note.status == "pending" and "not delivered: 3043" in note.last_error
        assert note.delivery_status.startswith("3043 발송 실패 (SMS)")
        note = tick(cli, sms, minutes=20)
        assert note.attempts == 3 and note.status == "sent"
        tick(cli, sms, minutes=1)
        note = tick(cli, sms, minutes=1)
    assert note.status == "delivered" and len(solapi.handsets[GUARDIAN_DOMESTIC]) == 1
    assert len(solapi.requests) == 2  # the 503 was never taken
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("safecall"))
    assert "notification_retry" in logged and "notification_delivered" in logged
    assert GUARDIAN_DOMESTIC not in logged and GUARDIAN not in logged and "0999" not in logged


def test_texts_that_keep_failing_are_shown_as_failed_and_still_retried(cli, solapi):
    configure(cli, solapi)
    sms = build_sms(load_instance(cli.root, ENV))
    solapi.outcomes[GUARDIAN_DOMESTIC] = ["3043"] * 7  # max_attempts is 6
    queue_one(cli)
    seen = []
    for _ in range(100):
        note = tick(cli, sms, minutes=10)
        seen.append((note.status, note.attempts))
        if note.status == "delivered":
            break
    assert ("failed", 6) in seen and ("failed", 7) in seen  # reported as failed, and tried again all the same
    assert note.status == "delivered" and note.attempts == 8 and "3043" in note.last_error
    assert len(solapi.handsets[GUARDIAN_DOMESTIC]) == 1


def roster(cli, tmp_path):
    cli.set_trunks(scripted_trunks({"+821001230001": ["ack"], "+821001230002": ["no_answer"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("응답", "010-0123-0001", guardian="보호자1", guardian_phone="010-0999-0001"),
                    person_row("무응답", "010-0123-0002", guardian="보호자", guardian_phone="010-0999-0002"),
                ],
            )
        ),
    )


def test_one_text_per_person_per_week_across_two_runs(cli, solapi, tmp_path):
    configure(cli, solapi)
    cli.edit_campaign("guardian_sms = false", "guardian_sms = true")
    roster(cli, tmp_path)
    instance = load_instance(cli.root, ENV)
    campaigns = {"weekly-safe-call": load_campaign(instance, "weekly-safe-call")}
    sms = build_sms(instance)

    def escalate():
        queue_escalations(cli.db(), instance.settings, campaigns, now=cli.clock.now())
        send_notifications(cli.db(), instance.settings, None, sms, now=cli.clock.now())

    cli("campaign", "launch", "weekly-safe-call")  # the weekly run: 무응답 does not answer
    escalate()
    signals = write_csv(
        tmp_path / "s.csv",
        [["010-0123-0002", "2026-11-25", "power", "0.95"]],
        header=["전화번호", "일자", "종류", "점수"],
    )
    cli("signals", "import", str(signals))
    cli.clock.set(cli.clock.now() + timedelta(days=2, hours=2))  # Wednesday
    cli("signals", "launch", "weekly-safe-call", "--date", "2026-11-25")  # a second run, the same week
    with cli.db().session() as session:
        tasks = session.exec(select(VisitTask).where(VisitTask.kind == "visit")).all()
    assert len(tasks) == 2 and len({t.run_id for t in tasks}) == 2 and len({t.person_id for t in tasks}) == 1
    for _ in range(3):
        escalate()
    texts = [m for r in solapi.requests for m in r["messages"]]
    assert len(texts) == 1 and texts[0]["to"] == GUARDIAN_DOMESTIC and texts[0]["type"] == "SMS"
    assert texts[0]["text"] == "[안심콜] 무응답님이 안부 전화에 응답하지 않아 담당자가 방문합니다. 문의 02-2148-1234"
    assert euc_kr_bytes(texts[0]["text"]) <= 90
    with cli.db().session() as session:
        [note] = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "sms")).all()
    assert note.key == f"guardian:person:{tasks[0].person_id}:week:2026-11-23"


def test_campaign_validate_checks_the_guardian_text(cli, solapi):
    cli.edit_campaign("guardian_sms = false", "guardian_sms = true")
    failed = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert failed.exit_code == 1 and "key 'notify.guardian_sms': no SMS provider" in failed.output
    configure(cli, solapi)
    assert cli("campaign", "validate", "weekly-safe-call").exit_code == 0
    cli.edit_campaign("담당자가 방문합니다. 문의 {callback}", "담당 공무원이 곧 방문할 예정입니다. 문의 {callback}")
    failed = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert "key 'notify.guardian_unreachable': 99 bytes in EUC-KR" in failed.output and "allow_lms" in failed.output
    cli.edit_campaign("allow_lms = false", "allow_lms = true")
    assert cli("campaign", "validate", "weekly-safe-call").exit_code == 0
    cli.edit_campaign('. 문의 {callback}"\nguardian_help', '."\nguardian_help')
    failed = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert "key 'notify.guardian_unreachable': must contain {callback}" in failed.output


def test_settings_refuse_the_email_gateway_and_an_incomplete_solapi(cli):
    settings = cli.root / "config" / "safecall.toml"
    base = settings.read_text(encoding="utf-8")
    settings.write_text(base + '\n[sms]\nprovider = "email_gateway"\n', encoding="utf-8")
    failed = cli("config", "show", ok=False)
    assert "key 'sms.provider'" in failed.output and "not for Korea" in failed.output
    settings.write_text(base + '\n[sms]\nprovider = "solapi"\napi_key = { env = "K" }\n', encoding="utf-8")
    assert "provider solapi needs api_secret, sender, callback_number" in cli("config", "show", ok=False).output
    settings.write_text(base + '\n[sms]\nprovider = "solapi"\napi_key = "plain"\n', encoding="utf-8")
    assert "key 'sms.api_key'" in cli("config", "show", ok=False).output
    settings.write_text(
        base + '\n[sms]\nprovider = "solapi"\napi_key = { env = "K" }\napi_secret = { file = "/run/s" }\n'
        'sender = "02-2148-1234"\ncallback_number = "02-2148-1234"\nbase_url = "http://sms.example.org"\n',
        encoding="utf-8",
    )
    assert "must be an https:// URL" in cli("config", "show", ok=False).output
    settings.write_text(
        base + '\n[sms]\nprovider = "solapi"\napi_key = { env = "K" }\napi_secret = { file = "/run/s" }\n'
        'sender = "02-2148-1234"\ncallback_number = "02-2148-1234"\n',
        encoding="utf-8",
    )
    shown = cli("config", "show").output
    assert "<secret env:K>" in shown and "<secret file:/run/s>" in shown
