"""Korean channels on Twilio (issue 20): the voice and its prosody per person, spoken answers, call-backs,
the fallback apology, SIP codes and Retry-After."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import HEADER, person_row, write_csv
from live import always_open, outcomes_by_name, run_live_campaign
from recording_sink import RecordingSink
from sqlmodel import select
from test_twilio import ENV, cloud  # noqa: F401 (cloud is a fixture)
from test_twilio_faults import Webhooks, attempts_by_token, open_calls
from twilio_fake import FROM, FakeCall

from safecall.clock import SystemClock
from safecall.ivr import load_flow
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, MemberState, Person, RunMember
from safecall.telephony.base import CallRequest, TrunkBusy
from safecall.telephony.twilio.trunk import TwilioTrunk
from safecall.telephony.twilio.webhooks import Speaking

SID = "CA" + "5" * 32


def roster_with_voices(cli, tmp_path, voices: list[str]):
    always_open(cli)
    rows = [person_row(f"사람{i}", f"010-0123-000{i}") + [voice] for i, voice in enumerate(voices)]
    return cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows, header=HEADER + ["음성"])), ok=False)


def test_the_voice_is_explicit_korean_with_a_leading_pause_and_prosody_per_person(cli, tmp_path):
    assert roster_with_voices(cli, tmp_path, ["보통", "천천히", "크게"]).exit_code == 0
    services, calls = open_calls(cli, 3)
    with services.db.transaction() as session:  # the voice webhook starts the one IVR session itself
        for attempt in session.exec(select(Attempt)):
            attempt.ivr_started_at = None
            session.add(attempt)
    hooks = Webhooks(services.lifecycle)
    try:
        says = []
        for token, sid in calls:
            status, body = hooks.post("voice", token, sid, {"CallStatus": "in-progress"})
            response = ET.fromstring(body)
            assert [c.tag for c in response] == ["Pause", "Gather"] and response[0].get("length") == "1"
            say = response.find("Gather/Say")
            assert (say.get("voice"), say.get("language")) == ("Google.ko-KR-Neural2-A", "ko-KR")
            says.append(say)
        normal, slow, loud = says
        assert normal.find("prosody") is None and normal.text.startswith("안녕하세요")
        assert slow.find("prosody").attrib == {"rate": "80%"} and slow.find("prosody").text.startswith("안녕하세요")
        assert loud.find("prosody").attrib == {"volume": "x-loud", "rate": "90%"}
    finally:
        hooks.stop()


def test_a_voice_the_roster_does_not_know_is_refused_naming_the_row(cli, tmp_path):
    result = roster_with_voices(cli, tmp_path, ["보통", "아주 크게"])
    assert (
        result.exit_code != 0
        and "row 3" in result.output
        and "음성" in result.output
        and "보통/천천히/크게" in result.output
    )


def test_the_voice_and_the_pause_are_configurable(cli):
    sink = RecordingSink(load_flow(cli.root / "ivr", "safe-call"))
    sink.call_ids["t"] = SID
    hooks = Webhooks(sink, speaking=Speaking(voice="Polly.Seoyeon-Neural", leading_pause=2))
    try:
        response = ET.fromstring(hooks.post("voice", "t", SID, {"CallStatus": "in-progress"})[1])
        assert response[0].get("length") == "2" and response.find("Gather/Say").get("voice") == "Polly.Seoyeon-Neural"
    finally:
        hooks.stop()


SPOKEN = [
    ("네", "0.91", "acknowledged"),
    ("괜찮아요", "0.8", "acknowledged"),
    ("잘 지내요", "0.77", "acknowledged"),
    ("네. 괜찮아요", "0.9", "acknowledged"),
    ("도와주세요", "0.88", "help_requested"),
    ("아파요", "0.7", "help_requested"),
    ("와 주세요", "0.85", "help_requested"),
    ("네 도와주세요", "0.9", "help_requested"),  # help wins
    ("안 괜찮아요", "0.95", "help_requested"),
    ("힘드네요", "0.9", "help_requested"),  # not well, said so
]
UNHEARD = [
    ("네", "0.3"),
    ("", "0"),
    ("네 여보세요", "0.95"),
    ("네? 뭐라고요?", "0.9"),
    ("몰라요", "0.9"),
    ("네", "nan"),
]


def test_signed_speech_webhooks_map_phrases_and_ask_again_when_unsure(cli):
    sink = RecordingSink(load_flow(cli.root / "ivr", "safe-call"))
    hooks = Webhooks(sink)
    try:
        for i, (text, confidence, outcome) in enumerate(SPOKEN):
            token = f"said-{i}"
            sink.call_ids[token], sink.started = SID, sink.started | {token}
            status, body = hooks.post(
                "gather", token, SID, {"SpeechResult": text, "Confidence": confidence}, "?asked=1"
            )
            assert (
                status == 200
                and "<Hangup />" in body
                and ("확인되었습니다" if outcome == "acknowledged" else "담당 복지") in body
            )
            assert sink.keys[-1] == (token, "speech", outcome, (text, float(confidence))), text
        recorded = len(sink.keys)
        for i, (text, confidence) in enumerate(UNHEARD):
            token = f"unheard-{i}"
            sink.call_ids[token], sink.started = SID, sink.started | {token}
            status, body = hooks.post(
                "gather", token, SID, {"SpeechResult": text, "Confidence": confidence}, "?asked=1"
            )
            gather = ET.fromstring(body).find("Gather")
            assert gather is not None and gather.get("input") == "dtmf speech", text  # the question again
            assert gather.find("Say").text.startswith("다시 안내해 드립니다"), text
        assert len(sink.keys) == recorded
        assert [text for _, text, _ in sink.heard] == [text for text, _ in UNHEARD if text]  # kept for the officer
    finally:
        hooks.stop()


def test_a_spoken_answer_is_stored_with_the_attempt_and_shown_in_the_history(cli, tmp_path):
    assert roster_with_voices(cli, tmp_path, ["보통"]).exit_code == 0
    services, [(token, sid)] = open_calls(cli, 1)
    hooks = Webhooks(services.lifecycle)
    try:
        hooks.post(
            "gather", token, sid, {"SpeechResult": "네 여보세요", "Confidence": "0.9"}, "?asked=1"
        )  # unclear: asked again
        unclear = attempts_by_token(services)[token]
        assert (unclear.disposition, unclear.speech_text, unclear.speech_confidence) == (None, "네 여보세요", 0.9)
        status, body = hooks.post(
            "gather", token, sid, {"SpeechResult": "네 잘 지내요", "Confidence": "0.83"}, "?asked=2"
        )
        assert "확인되었습니다" in body
    finally:
        hooks.stop()
    attempt = attempts_by_token(services)[token]
    assert (attempt.digit, attempt.disposition, attempt.speech_text, attempt.speech_confidence) == (
        "speech",
        "acknowledged",
        "네 잘 지내요",
        0.83,
    )
    assert 'acknowledged said "네 잘 지내요" (83%)' in cli("recipients", "show", "사람0").output


def test_a_spoken_answer_over_a_whole_twilio_campaign(cli, cloud):
    spoken = next(n for n, b in cloud.scripts.items() if b == "ack")
    cloud.scripts[spoken] = "say:네 괜찮아요:0.88"
    helped = next(n for n, b in cloud.scripts.items() if b == "help")
    cloud.scripts[helped] = "say:와 주세요:0.9"
    sip = next(n for n, b in cloud.scripts.items() if b == "no_answer")
    cloud.scripts[sip] = "sip404"  # the carrier says the number does not exist
    services, _ = run_live_campaign(cli, ENV)
    members, attempts = outcomes_by_name(services)
    assert members["응답"] == "acknowledged" and attempts["응답"] == ["acknowledged"]
    assert members["도움"] == "help_requested"
    assert attempts["무응답"] == ["invalid_number"] and members["무응답"] == "unreachable"  # never rung again


# ---- call-backs ----


def callback_setup(cli, tmp_path):
    """A run with 사람0 waiting for a retry, 사람1 already acknowledged; 사람2 is not in any run."""
    assert roster_with_voices(cli, tmp_path, ["보통", "보통", "천천히"]).exit_code == 0
    services = Services.open(load_instance(cli.root, ENV), SystemClock())
    campaign = services.campaign("weekly-safe-call")
    now = SystemClock().now()
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=now)
    with services.db.transaction() as session:
        people = {p.name: p for p in session.exec(select(Person))}
        for member in session.exec(select(RunMember)):
            name = next(n for n, p in people.items() if p.id == member.person_id)
            if name == "사람0":  # called once, no answer, a retry due later
                member.attempts_made = 1
                session.add(
                    Attempt(
                        run_id=run.id,
                        member_id=member.id,
                        person_id=member.person_id,
                        number=1,
                        phone=people[name].phone,
                        token="first-call-0000000000",
                        placed_at=now,
                        status="done",
                        disposition="no_answer",
                        ended_at=now,
                    )
                )
            elif name == "사람1":
                member.state = MemberState.ACKNOWLEDGED
            else:
                session.delete(member)
                continue
            session.add(member)
    return services, {name: p.phone for name, p in people.items()}


def member_state(services, name: str) -> str:
    with services.db.session() as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        return session.exec(select(RunMember.state).where(RunMember.person_id == person.id)).one()


def test_a_call_back_from_a_person_with_a_pending_retry_hears_the_ivr_and_counts(cli, tmp_path):
    services, phones = callback_setup(cli, tmp_path)
    hooks = Webhooks(services.lifecycle)
    try:
        status, body = hooks.twilio.post(
            _caller(phones["사람0"], SID),
            "https://safecall.example.org/twilio/incoming",
            {"From": phones["사람0"], "CallStatus": "ringing", "Direction": "inbound"},
        )
        gather = ET.fromstring(body).find("Gather")
        assert status == 200 and gather is not None and gather.get("action").endswith("&inbound=1")
        action = gather.get("action").removeprefix("https://safecall.example.org/twilio/gather/")
        token, query = action.split("?")
        # Someone else's call cannot answer for it.
        assert "<Hangup />" in hooks.post("gather", token, "CA" + "6" * 32, {"Digits": "1"}, "?" + query)[1]
        assert member_state(services, "사람0") == MemberState.IN_CALL
        status, body = hooks.post("gather", token, SID, {"Digits": "1"}, "?" + query)
        assert "확인되었습니다" in body
    finally:
        hooks.stop()
    callback = attempts_by_token(services)[token]
    assert (callback.inbound, callback.number, callback.disposition, callback.status) == (
        True,
        2,
        "acknowledged",
        "done",
    )
    assert member_state(services, "사람0") == MemberState.ACKNOWLEDGED
    assert "acknowledged (call-back)" in cli("recipients", "show", "사람0").output
    # The weekly report counts call-back acknowledgements apart (caller ID can be forged).
    [row] = json.loads(cli("report", "weekly", "--format", "json").output)
    assert (row["ack_retry"], row["ack_callback"]) == (1, 1)


def test_a_call_back_that_hangs_up_is_ended_by_the_numbers_status_callback_and_retried(cli, tmp_path):
    services, phones = callback_setup(cli, tmp_path)
    hooks = Webhooks(services.lifecycle)
    try:
        hooks.twilio.post(
            _caller(phones["사람0"], SID), "https://safecall.example.org/twilio/incoming", {"From": phones["사람0"]}
        )
        assert member_state(services, "사람0") == MemberState.IN_CALL
        status, _ = hooks.twilio.post(
            _caller(phones["사람0"], SID),
            "https://safecall.example.org/twilio/incoming/status",
            {"From": phones["사람0"], "CallStatus": "completed"},
        )
        assert status == 204
    finally:
        hooks.stop()
    [callback] = [a for a in attempts_by_token(services).values() if a.inbound]
    assert (callback.status, callback.disposition) == ("done", "answered_no_key")
    assert member_state(services, "사람0") == MemberState.PENDING  # still owed a call


@pytest.mark.parametrize("office", [None, "+8227310000"])
def test_a_call_back_from_someone_acknowledged_or_unknown_hears_a_short_message(cli, tmp_path, office):
    services, phones = callback_setup(cli, tmp_path)
    hooks = Webhooks(services.lifecycle, office_number=office)
    try:
        for caller in (phones["사람1"], phones["사람2"], "+821099998888", "anonymous"):
            status, body = hooks.twilio.post(
                _caller(caller, SID), "https://safecall.example.org/twilio/incoming", {"From": caller}
            )
            response = ET.fromstring(body)
            assert status == 200 and response.find("Gather") is None
            assert "확인해 드릴 안부 전화가 없습니다" in "".join(s.text for s in response.iter("Say"))
            if office:
                assert response.find("Dial").text == office
            else:
                assert response.find("Dial") is None and response.find("Hangup") is not None
    finally:
        hooks.stop()
    assert not [a for a in attempts_by_token(services).values() if a.inbound]
    assert member_state(services, "사람1") == MemberState.ACKNOWLEDGED


def _caller(number: str, sid: str) -> FakeCall:
    """An incoming call from `number` to our number (the fake posts `From` as given in the parameters)."""
    return FakeCall(sid, FROM, {}, "-")


# ---- Twilio loose ends ----


def test_the_fallback_url_apologises_in_korean_and_the_attempt_is_retried(cli, tmp_path):
    sink = RecordingSink(load_flow(cli.root / "ivr", "safe-call"))
    hooks = Webhooks(sink)
    try:
        status, body = hooks.post("fallback", "any-token", SID, {"ErrorCode": "11200", "ErrorUrl": "https://x"})
        response = ET.fromstring(body)
        assert status == 200 and "죄송합니다" in response.find("Say").text and response.find("Hangup") is not None
        assert response.find("Say").get("language") == "ko-KR" and sink.asked == [] and sink.keys == []  # no database
        assert hooks.post("fallback", "any-token", SID, {}, "")[0] == 200
        unsigned = hooks.twilio.post(
            _caller("+8210", SID), "https://safecall.example.org/twilio/fallback", {}, sign=False
        )
        assert unsigned[0] == 403
    finally:
        hooks.stop()


def test_429_and_5xx_return_at_once_as_trunk_busy_and_nobody_is_called_twice(cli, cloud):
    services = Services.open(load_instance(cli.root, ENV), SystemClock())
    flow = services.campaign_rules("weekly-safe-call").flow
    trunk = TwilioTrunk(services.instance.trunk(), SystemClock(), RecordingSink(flow), ENV)
    number = next(n for n, b in cloud.scripts.items() if b == "busy")

    def originate(token: str) -> None:
        trunk.originate(
            CallRequest(
                token=token,
                number=number,
                attempt_number=1,
                week=None,
                placed_at=SystemClock().now(),
                ring_timeout=30,
                max_call_seconds=180,
                flow=flow,
            )
        )

    try:
        cloud.create_failures, cloud.retry_after = [429], "3"
        with pytest.raises(TrunkBusy) as busy:  # one request, no waiting: the dialer places it again later
            originate("r")
        assert busy.value.retry_after == 3.0 and len(cloud.creates) == 1 and not cloud.calls
        originate("r")
        assert len(cloud.calls) == 1
        cloud.create_failures, cloud.retry_after = [429], "7200"  # said as is: the dialer decides how long it waits
        with pytest.raises(TrunkBusy) as busy:
            originate("s")
        assert busy.value.retry_after == 7200.0
        cloud.create_failures = [503]  # no call was made: busy, with no wait said
        with pytest.raises(TrunkBusy) as busy:
            originate("t")
        assert busy.value.retry_after is None and len(cloud.calls) == 1
        cloud.create_failures, cloud.create_anyway_on_500 = [500], True  # the call was made before the 500
        originate("u")
        assert len(cloud.calls) == 2 and len(cloud.creates) == 5  # found, not created again
    finally:
        trunk.close()
