"""The Twilio trunk: the real SDK against a local fake REST server, the real webhook server on loopback."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from conftest import person_row, write_csv
from live import always_open, free_port, outcomes_by_name, run_live_campaign
from recording_sink import RecordingSink
from sqlmodel import select
from twilio_fake import FROM, SID, TOKEN, FakeCall, FakeTwilio
from typer.testing import CliRunner

from safecall.cli import create_app
from safecall.clock import SystemClock
from safecall.ivr import load_flow
from safecall.store import Attempt, Person
from safecall.telephony.base import LineResult
from safecall.telephony.twilio.webhooks import WebhookServer, create_webhook_app, final_result

PUBLIC = "https://safecall.example.org"
ENV = {"TEST_TWILIO_TOKEN": TOKEN, "SAFECALL_LANG": "en"}  # the checks are read in English
PEOPLE = [
    ("응답", "ack"),
    ("무입력", "no_key"),
    ("무응답", "no_answer"),
    ("통화중", "busy"),
    ("도움", "help"),
    ("끊음", "hangup"),
    ("음성사서함", "voicemail"),
    ("없는번호", "invalid"),
]


def twilio_trunks(api_base: str, port: int, **extra) -> str:
    lines = [
        'default = "cloud"',
        "[trunks.cloud]",
        'type = "twilio"',
        f'account_sid = "{SID}"',
        'auth_token = { env = "TEST_TWILIO_TOKEN" }',
        f'from_number = "{FROM}"',
        f'public_base_url = "{PUBLIC}/"',
        f'listen = "127.0.0.1:{port}"',
        "channels = 4",
        "calls_per_second = 50",
        f'api_base_url = "{api_base}"',
    ] + [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def cloud(cli, tmp_path):
    port = free_port()
    numbers = {name: f"+82100123{i:04d}" for i, (name, _) in enumerate(PEOPLE)}
    fake = FakeTwilio(
        PUBLIC, f"http://127.0.0.1:{port}", {numbers[name]: behaviour for name, behaviour in PEOPLE}
    ).start()
    cli.set_trunks(twilio_trunks(fake.base_url, port))
    always_open(cli)
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row(name, "010-0123-" + numbers[name][-4:]) for name, _ in PEOPLE])),
    )
    yield fake
    fake.stop()


EXPECTED = {
    "응답": "acknowledged",
    "도움": "help_requested",
    "무입력": "unreachable",
    "무응답": "unreachable",
    "통화중": "unreachable",
    "끊음": "unreachable",
    "음성사서함": "unreachable",
    "없는번호": "unreachable",
}


def test_a_weekly_campaign_on_twilio(cli, cloud):
    services, _ = run_live_campaign(cli, ENV)
    members, attempts = outcomes_by_name(services)
    assert members == EXPECTED
    assert attempts["응답"] == ["acknowledged"]
    assert (
        attempts["음성사서함"] == ["answered_no_key"] * 4
    )  # voicemail: completed without a digit is not an acknowledgement
    assert attempts["끊음"] == ["answered_no_key"] * 4
    assert attempts["무응답"] == ["no_answer"] * 4 and attempts["통화중"] == ["busy"] * 4
    assert attempts["없는번호"] == ["invalid_number"]  # 21211: no point ringing a number that does not exist
    ack = next(c for c in cloud.calls.values() if c.behaviour == "ack")
    assert ack.params["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert ack.params["Url"].startswith(f"{PUBLIC}/twilio/voice/") and ack.params["Timeout"] == "30"
    assert ack.params["FallbackUrl"].startswith(f"{PUBLIC}/twilio/fallback/") and ack.params["FallbackMethod"] == "POST"
    first = ET.fromstring(ack.webhooks[3][3])
    assert [child.tag for child in first] == ["Pause", "Gather"] and first[0].get(
        "length"
    ) == "1"  # a short leading pause
    gather = first[1]
    assert gather.get("action").startswith(f"{PUBLIC}/twilio/gather/") and gather.get("numDigits") == "1"
    assert (gather.get("input"), gather.get("language"), gather.get("speechTimeout")) == (
        "dtmf speech",
        "ko-KR",
        "auto",
    )
    assert gather.get("hints").startswith("네, 예, 괜찮아요, 잘 지내요") and "도와주세요" in gather.get("hints")
    say = gather.find("Say")
    assert (say.get("voice"), say.get("language")) == ("Google.ko-KR-Neural2-A", "ko-KR")  # an explicit Korean voice
    assert (
        say.text.startswith("안녕하세요")
        and say.text.endswith("'도와주세요'라고 하셔도 됩니다.")
        and say.find("prosody") is None
    )
    assert "확인되었습니다" in ack.webhooks[4][3] and "<Hangup />" in ack.webhooks[4][3]
    with services.db.session() as session:
        sids = {a.trunk_call_id for a in session.exec(select(Attempt)) if a.trunk_call_id}
    assert sids <= set(cloud.calls) and len(sids) == len(cloud.calls)
    listing = cli("visits", "list", "--date", services.today().isoformat()).output
    assert "무입력" in listing and "음성사서함" in listing and "│ 응답 " not in listing


def test_duplicated_and_out_of_order_callbacks_change_nothing(cli, cloud):
    cloud.duplicate_callbacks = True
    cloud.out_of_order = True
    services, _ = run_live_campaign(cli, ENV)
    members, attempts = outcomes_by_name(services)
    assert members == EXPECTED
    assert attempts["응답"] == ["acknowledged"]
    assert len(attempts["무입력"]) == 4


def test_a_missing_final_callback_is_reconciled_after_the_maximum_call_length(cli, cloud):
    cloud.drop_final_callback = {"ack", "no_key"}
    cli.edit_campaign("max_call_seconds = 180", "max_call_seconds = 30")
    import safecall.dialer as dialer_module

    original = dialer_module.GRACE
    dialer_module.GRACE = dialer_module.timedelta(seconds=-59)  # write-off time: ring 30 s + call 30 s + 1 s
    try:
        services, _ = run_live_campaign(cli, ENV)
    finally:
        dialer_module.GRACE = original
    members, attempts = outcomes_by_name(services)
    assert members["응답"] == "acknowledged" and attempts["응답"] == ["acknowledged"]
    assert attempts["무입력"] == ["answered_no_key"] * 4  # fetched as completed, no digit


def test_bursts_of_429_and_500_are_retried_without_dialling_twice(cli, cloud):
    cloud.create_failures = [429, 429, 500, 500, 429]
    cloud.create_anyway_on_500 = True  # the 500s came after the call was made
    services, _ = run_live_campaign(cli, ENV)
    members, _ = outcomes_by_name(services)
    assert members == EXPECTED
    with services.db.session() as session:
        attempts = list(session.exec(select(Attempt)))
    per_attempt = {a.token: [c for c in cloud.calls.values() if a.token in c.params["Url"]] for a in attempts}
    assert all(len(calls) <= 1 for calls in per_attempt.values()), "an attempt was dialled twice"
    assert len(cloud.calls) == sum(1 for a in attempts if a.disposition != "invalid_number")


def test_a_geo_permission_error_stops_the_campaign_instead_of_burning_attempts(cli, cloud):
    from safecall.errors import TrunkFatalError

    for number in list(cloud.scripts):
        cloud.scripts[number] = "geo"
    with pytest.raises(TrunkFatalError, match="geo permissions"):
        run_live_campaign(cli, ENV)


def webhook_app(cli, sink):
    return create_webhook_app(
        public_base_url=PUBLIC, auth_token=TOKEN, sink=sink, now=SystemClock().now, on_event=lambda e: None
    )


def Recorder(cli, live=True) -> RecordingSink:
    return RecordingSink(load_flow(cli.root / "ivr", "safe-call"), live=live)


def test_unsigned_forged_and_replayed_elsewhere_requests_are_refused(cli):
    port = free_port()
    recorder = Recorder(cli)
    server = WebhookServer(webhook_app(cli, recorder), "127.0.0.1", port).start()
    fake = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", {})
    fake_call = FakeCall("CA" + "1" * 32, "+821001230000", {}, "ack")
    recorder.call_ids["secret-token"] = fake_call.sid
    recorder.started.add("secret-token")
    try:
        url = f"{PUBLIC}/twilio/gather/secret-token?asked=1"
        assert fake.post(fake_call, url, {"Digits": "1"}, sign=False)[0] == 403
        headers_forged = fake.validator.compute_signature(url, {"Digits": "2"})  # signed for other parameters
        request = Request(
            f"http://127.0.0.1:{port}/twilio/gather/secret-token?asked=1",
            data=urlencode({"Digits": "1"}).encode(),
            headers={"X-Twilio-Signature": headers_forged},
        )
        with pytest.raises(HTTPError) as refused:
            urlopen(request, timeout=5)
        assert refused.value.code == 403
        # Signed for another token's URL: refused too.
        other = fake.validator.compute_signature(f"{PUBLIC}/twilio/gather/other-token?asked=1", {"Digits": "1"})
        request = Request(
            f"http://127.0.0.1:{port}/twilio/gather/secret-token?asked=1",
            data=urlencode({"Digits": "1"}).encode(),
            headers={"X-Twilio-Signature": other},
        )
        with pytest.raises(HTTPError):
            urlopen(request, timeout=5)
        status_forged = fake.post(
            fake_call, f"{PUBLIC}/twilio/status/secret-token", {"CallStatus": "completed"}, sign=False
        )
        assert status_forged[0] == 403
        assert recorder.keys == []
        # Properly signed: accepted, and the keypress is stored before the thank-you is returned.
        status, body = fake.post(fake_call, url, {"Digits": "1"})
        assert status == 200 and recorder.keys == [("secret-token", "1", "acknowledged")] and "확인되었습니다" in body
    finally:
        server.stop()


def test_an_unknown_attempt_gets_a_polite_hang_up(cli):
    port = free_port()
    server = WebhookServer(webhook_app(cli, Recorder(cli, live=False)), "127.0.0.1", port).start()
    fake = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", {})
    try:
        status, body = fake.post(
            FakeCall("CA" + "2" * 32, "+821001230000", {}, "ack"),
            f"{PUBLIC}/twilio/voice/nobody",
            {"CallStatus": "in-progress"},
        )
        assert status == 200 and "<Hangup />" in body and "Gather" not in body
    finally:
        server.stop()


def test_final_status_mapping():
    assert final_result("completed", None) == LineResult.ANSWERED
    assert final_result("completed", "machine_end_beep") == LineResult.MACHINE
    assert final_result("no-answer", None) == LineResult.NO_ANSWER
    assert final_result("busy", None) == LineResult.BUSY
    assert final_result("failed", None) == LineResult.FAILED
    assert final_result("in-progress", None) is None and final_result("ringing", None) is None
    # The carrier's SIP answer: 404 (not found) and 484 (address incomplete) mean the number does not exist.
    assert final_result("failed", None, "404") == final_result("no-answer", None, "484") == LineResult.INVALID_NUMBER
    assert (
        final_result("failed", None, "503") == LineResult.FAILED
        and final_result("busy", None, "486") == LineResult.BUSY
    )
    assert final_result("completed", None, "404") == LineResult.ANSWERED


def test_answering_machine_detection_hangs_up_on_machines(cli, cloud):
    port = int(cli.root.joinpath("config", "trunks.toml").read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
    cli.set_trunks(twilio_trunks(cloud.base_url, port, machine_detection="true"))
    cloud.machine_answers = {"voicemail"}
    services, _ = run_live_campaign(cli, ENV)
    _, attempts = outcomes_by_name(services)
    assert attempts["음성사서함"] == ["machine"] * 4
    machine_call = next(c for c in cloud.calls.values() if c.behaviour == "voicemail")
    assert machine_call.params["MachineDetection"] == "Enable"
    assert "<Hangup />" in machine_call.webhooks[3][3] and "Gather" not in machine_call.webhooks[3][3]


def test_trunk_check_for_twilio(cli, cloud):
    runner = CliRunner()
    good = runner.invoke(create_app(environ=ENV), ["--config", str(cli.root), "trunk", "check"])
    assert good.exit_code == 0, good.output
    assert "ok   webhook URL: https://safecall.example.org uses https" in good.output
    assert f"ok   from number: {FROM} belongs to the account" in good.output
    wrong = runner.invoke(
        create_app(environ={**ENV, "TEST_TWILIO_TOKEN": "wrong"}), ["--config", str(cli.root), "trunk", "check"]
    )
    assert wrong.exit_code == 1 and "the account SID or auth token is wrong" in wrong.output
    assert TOKEN not in good.output + wrong.output
    text = (cli.root / "config" / "trunks.toml").read_text()
    (cli.root / "config" / "trunks.toml").write_text(
        text.replace(f'from_number = "{FROM}"', 'from_number = "+827000000999"').replace(
            "https://safecall", "http://safecall"
        )
    )
    bad = runner.invoke(create_app(environ=ENV), ["--config", str(cli.root), "trunk", "check"])
    assert "FAIL webhook URL: http://safecall.example.org must be an https:// address" in bad.output
    assert "FAIL from number: +827000000999 is not a number of this account" in bad.output


def test_serve_hosts_the_webhooks_and_records_keypresses_for_live_attempts(cli, cloud):
    import threading

    from safecall.runs import launch_run
    from safecall.services import Services
    from safecall.settings import load_instance
    from safecall.store import MemberState, RunMember

    services = Services.open(load_instance(cli.root, ENV), SystemClock())
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=SystemClock().now())
    with services.db.transaction() as session:
        member = session.exec(select(RunMember)).first()
        member.state, member.attempts_made = MemberState.IN_CALL, 1
        session.add(member)
        session.add(
            Attempt(
                run_id=run.id,
                member_id=member.id,
                person_id=member.person_id,
                number=1,
                phone="+821001230000",
                token="live-token-0000000000000000",
                placed_at=SystemClock().now(),
                trunk_call_id="CA" + "3" * 32,
                ivr_started_at=SystemClock().now(),
            )
        )
    result = {}
    server = threading.Thread(
        target=lambda: result.update(
            out=CliRunner()
            .invoke(create_app(environ=ENV), ["--config", str(cli.root), "serve", "--seconds", "3"])
            .output
        )
    )
    server.start()
    call = FakeCall("CA" + "3" * 32, "+821001230000", {}, "ack")
    url = f"{PUBLIC}/twilio/gather/live-token-0000000000000000?asked=1"
    for _ in range(100):
        try:
            status, body = cloud.post(call, url, {"Digits": "1"})
            break
        except OSError:
            time.sleep(0.05)
    server.join()
    assert status == 200 and "확인되었습니다" in body
    assert "Serving the IVR" in result["out"] and "Stopped." in result["out"]
    with services.db.session() as session:
        attempt = session.exec(select(Attempt).where(Attempt.token == "live-token-0000000000000000")).one()
    assert (attempt.digit, attempt.disposition) == ("1", "acknowledged")


def test_guardian_sms_through_twilio_messaging(cli, cloud):
    from safecall.escalation import queue_escalations, send_notifications
    from safecall.notify import build_sms
    from safecall.settings import load_instance

    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8")
        + '\n[sms]\nprovider = "twilio"\ntwilio_trunk = "cloud"\ncallback_number = "02-2148-1234"\n',
        encoding="utf-8",
    )
    cli.edit_campaign("guardian_sms = false", "guardian_sms = true")
    services, _ = run_live_campaign(cli, ENV)
    instance = load_instance(cli.root, ENV)
    with services.db.transaction() as session:
        for person in session.exec(select(Person)):
            person.guardian_phone = "+821009990000"
            session.add(person)
    campaigns = {"weekly-safe-call": services.campaign("weekly-safe-call")}
    now = SystemClock().now()
    for _ in range(2):
        queue_escalations(services.db, instance.settings, campaigns, now=now)
        send_notifications(services.db, instance.settings, None, build_sms(instance), now=now)
    bodies = [m["Body"] for m in cloud.messages]
    assert len(bodies) == 7  # 6 final non-responders and 1 help request, once each
    assert all(m["To"] == "+821009990000" and m["From"] == FROM for m in cloud.messages)
    assert sum("도움을 요청해" in b for b in bodies) == 1 and all(b.endswith("문의 02-2148-1234") for b in bodies)
