"""One conversation, rendered three ways (issue 25, part 1): the simulated trunk, the Asterisk stand-in over real
AMI and FastAGI sockets, and the Twilio fake over a real webhook server run the same call rules.

On each trunk, distress keyed or said aloud reaches the officer as help in the same way (a same-day call-back
task), and an answer that could not be stored ends the call without thanks. Asterisk has no speech: keys only.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from asterisk_standin import AsteriskStandIn
from conftest import person_row, scripted_trunks, write_csv
from live import always_open, free_port, run_live_campaign
from recording_sink import RecordingSink
from sqlmodel import select
from test_asterisk import AMI_ENV, asterisk_trunks, recorded_env, talk_to_fastagi
from test_twilio import ENV, PUBLIC, twilio_trunks
from test_twilio_faults import Webhooks
from twilio_fake import FakeTwilio

from safecall.clock import VirtualClock
from safecall.ivr import load_flow
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import defaults_root, load_instance
from safecall.store import Attempt, Person, RunMember, StoreError, VisitTask
from safecall.telephony.base import CallRequest
from safecall.telephony.simulated import SimulatedTrunk, SimulatedTrunkConfig

FLOW = load_flow(defaults_root() / "ivr", "safe-call")
KEYED, SPOKEN, WELL_SAID, UNCLEAR = "010-0125-0001", "010-0125-0002", "010-0125-0003", "010-0125-0004"
E164 = {number: "+8210" + number[4:].replace("-", "") for number in (KEYED, SPOKEN, WELL_SAID, UNCLEAR)}
NAMES = {KEYED: "눌러도움", SPOKEN: "말로도움", WELL_SAID: "말로응답", UNCLEAR: "말흐림"}


def import_people(cli, tmp_path, numbers) -> None:
    always_open(cli)
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row(NAMES[n], n) for n in numbers])))


def outcome_of(services, name: str) -> dict:
    """What the officer and the records show for `name`: member state, open tasks, and each attempt."""
    with services.db.session() as session:
        person = session.exec(select(Person).where(Person.name == name)).one()
        member = session.exec(select(RunMember).where(RunMember.person_id == person.id)).one()
        tasks = sorted(
            (t.kind, t.status) for t in session.exec(select(VisitTask).where(VisitTask.person_id == person.id))
        )
        attempts = [
            (a.disposition, a.digit, a.speech_text)
            for a in session.exec(select(Attempt).where(Attempt.person_id == person.id).order_by(Attempt.number))
        ]
    return {"state": member.state, "tasks": tasks, "attempts": attempts}


def assert_help_reached_the_officer(services, keyed: str, spoken: str | None) -> None:
    """Help keyed and help said aloud end the same way: a same-day call-back task from the officer."""
    for name, digit, heard in ((keyed, "2", None), (spoken, "speech", "도와주세요")):
        if name is None:
            continue
        assert outcome_of(services, name) == {
            "state": "help_requested",
            "tasks": [("callback", "open")],
            "attempts": [("help_requested", digit, heard)],
        }, name


# ---- the simulated trunk: the engine's own path, in virtual time ----


def test_distress_keyed_or_spoken_reaches_the_officer_on_the_simulated_trunk(cli, tmp_path, clock):
    scripts = {
        E164[KEYED]: ["help"],
        E164[SPOKEN]: ["say:도와주세요:0.9"],
        E164[WELL_SAID]: ["say:네 괜찮아요:0.9"],
        E164[UNCLEAR]: ["say:여보세요:0.9"],
    }
    cli.set_trunks(scripted_trunks(scripts).replace("seed = 1", 'seed = 1\nplaced_log = "placed.jsonl"'))
    import_people(cli, tmp_path, [KEYED, SPOKEN, WELL_SAID, UNCLEAR])
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    services.dialer(campaign).run(run.id)
    assert_help_reached_the_officer(services, NAMES[KEYED], NAMES[SPOKEN])
    assert outcome_of(services, NAMES[WELL_SAID]) == {
        "state": "acknowledged",
        "tasks": [],
        "attempts": [("acknowledged", "speech", "네 괜찮아요")],
    }
    # Unclear every time: asked again, then keys only, then no answer; retried, kept for the officer, then visited.
    unclear = outcome_of(services, NAMES[UNCLEAR])
    assert unclear["state"] == "unreachable" and unclear["tasks"] == [("visit", "open")]
    assert unclear["attempts"] == [("answered_no_key", None, "여보세요")] * 4
    # Each call's IVR session was claimed, as on the real trunks; the switch thanked only stored answers.
    with services.db.session() as session:
        attempts = session.exec(select(Attempt)).all()
    assert all(a.ivr_started_at is not None for a in attempts)
    thanked = [json.loads(line) for line in (cli.root / "placed.keys.jsonl").read_text().splitlines()]
    assert sorted(entry["thanked"] for entry in thanked) == ["2", "speech", "speech"]
    services.close()


def test_words_of_risk_said_aloud_reach_the_officers_task_through_the_simulated_trunk(cli, tmp_path, clock):
    cli.set_trunks(scripted_trunks({E164[SPOKEN]: ["say:죽고 싶어요:0.9"], E164[KEYED]: ["help"]}))
    import_people(cli, tmp_path, [KEYED, SPOKEN])
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    campaign = services.campaign("weekly-safe-call")
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    services.dialer(campaign).run(run.id)
    with services.db.session() as session:
        risky = {
            name: (task.kind, task.risk_speech)
            for task, name in session.exec(
                select(VisitTask, Person.name).join(Person, Person.id == VisitTask.person_id)
            )
        }
    assert risky == {
        NAMES[SPOKEN]: ("callback", True),
        NAMES[KEYED]: ("callback", False),
    }  # the judge's risk, passed on
    services.close()


def simulated_call(sink, script: list[str], tmp_path) -> tuple[SimulatedTrunk, list]:
    """One scripted call on a simulated trunk over `sink`, to its end: the trunk and its events."""
    start = datetime.fromisoformat("2026-11-23T10:00+09:00")
    tmp_path.mkdir(exist_ok=True)
    config = SimulatedTrunkConfig(type="simulated", scripts={"+821001250001": script})
    trunk = SimulatedTrunk(config, VirtualClock(start), sink, placed_log=tmp_path / "placed.jsonl")
    trunk.originate(CallRequest("tok", "+821001250001", 1, start.date(), start, 30, 180, FLOW))
    events = []
    while not any(e.kind == "ended" for e in events):
        events += trunk.wait_events(start + timedelta(minutes=10))
    return trunk, events


class Refusing(RecordingSink):
    def record_keypress(self, *args, **kwargs) -> bool:
        super().record_keypress(*args, **kwargs)
        return False


class Failing(RecordingSink):
    def record_keypress(self, *args, **kwargs) -> bool:
        super().record_keypress(*args, **kwargs)
        raise StoreError("database is locked")


@pytest.mark.parametrize("sink_kind", [Refusing, Failing])
@pytest.mark.parametrize("script", [["ack"], ["help"], ["say:도와주세요:0.9"]])
def test_an_answer_not_stored_is_not_thanked_on_the_simulated_trunk(tmp_path, sink_kind, script):
    stored, thanked_events = simulated_call(RecordingSink(FLOW), script, tmp_path / "ok")
    assert stored.keys_log.exists()  # stored: thanked
    sink = sink_kind(FLOW)
    trunk, events = simulated_call(sink, script, tmp_path)
    assert len(sink.keys) == 1  # it was tried, at the moment of the answer
    assert not trunk.keys_log.exists()  # the switch's log of thanks: none
    ended = next(e for e in events if e.kind == "ended")
    assert (
        ended.result == "answered" and ended.at < next(e for e in thanked_events if e.kind == "ended").at
    )  # no closing played


def test_a_simulated_call_whose_ivr_session_is_taken_is_not_conversed(tmp_path):
    sink = RecordingSink(FLOW)
    sink.started.add("tok")  # another session holds it
    trunk, events = simulated_call(sink, ["ack"], tmp_path)
    assert sink.keys == [] and [e.kind for e in events] == ["answered", "ended"] and events[0].at == events[1].at
    assert trunk.plan(trunk.placed[0])[1][3] == "key"  # had it been granted, the course would have its key


# ---- Asterisk: keys only ----


def test_distress_keyed_reaches_the_officer_over_the_asterisk_stand_in_keys_only(cli, tmp_path):
    agi_port = free_port()
    stand_in = AsteriskStandIn({KEYED.replace("-", ""): "help"}, fastagi=("127.0.0.1", agi_port)).start()
    cli.set_trunks(asterisk_trunks(stand_in.port, agi_port))
    import_people(cli, tmp_path, [KEYED])
    try:
        services, _ = run_live_campaign(cli, AMI_ENV)
        assert_help_reached_the_officer(services, NAMES[KEYED], None)
    finally:
        stand_in.stop()
    [call] = stand_in.calls
    sent = [line for side, line in call.agi_transcript if side == ">"]
    # Keys only: the question is GET DATA (DTMF), no speech is ever listened for; then help's closing.
    assert sent == [
        "ANSWER",
        "GET DATA safecall/prompt-greeting 5000 1",
        'STREAM FILE safecall/closing-thanks_help ""',
        'SET VARIABLE SAFECALL_RESULT "help_requested"',
        "HANGUP",
    ]


def test_an_asterisk_call_back_with_distress_is_help_and_an_unstored_answer_is_not_thanked(cli):
    callback_env = recorded_env(agi_network_script="safecall-callback", agi_arg_1="01001250001")
    for sink_kind in (RecordingSink, Refusing, Failing):
        sink = sink_kind(FLOW)
        sink.callers["+821001250001"] = "back"
        sent = talk_to_fastagi(
            sink, ["200 result=0", "200 result=2", "200 result=0", "200 result=0", "200 result=0"], env=callback_env
        )
        assert sink.keys == [("back", "2", "help_requested")]
        assert [(e.token, e.kind, e.result) for e in sink.events] == [
            ("back", "ended", "answered")
        ]  # ends with its IVR
        if sink_kind is RecordingSink:
            assert sent[2:] == [
                'STREAM FILE safecall/closing-thanks_help ""',
                'SET VARIABLE SAFECALL_RESULT "help_requested"',
                "HANGUP",
            ]
        else:
            assert sent[2:] == ["HANGUP"], sink_kind  # no thanks
    # A placed call whose answer is refused: no thanks either.
    sink = Refusing(FLOW)
    assert (
        talk_to_fastagi(sink, ["200 result=0", "200 result=1", "200 result=1"])[2:] == ["HANGUP"]
        and len(sink.keys) == 1
    )


# ---- Twilio ----


@pytest.fixture
def twilio_people(cli, tmp_path):
    port = free_port()
    fake = FakeTwilio(
        PUBLIC, f"http://127.0.0.1:{port}", {E164[KEYED]: "help", E164[SPOKEN]: "say:도와주세요:0.9"}
    ).start()
    cli.set_trunks(twilio_trunks(fake.base_url, port))
    import_people(cli, tmp_path, [KEYED, SPOKEN])
    yield fake
    fake.stop()


def test_distress_keyed_or_spoken_reaches_the_officer_on_twilio(cli, twilio_people):
    services, _ = run_live_campaign(cli, ENV)
    assert_help_reached_the_officer(services, NAMES[KEYED], NAMES[SPOKEN])
    spoken_call = next(c for c in twilio_people.calls.values() if c.behaviour.startswith("say:"))
    first_gather = next(
        ET.fromstring(body).find("Gather") for url, _, _, body in spoken_call.webhooks if "/twilio/voice/" in url
    )
    assert first_gather.get("input") == "dtmf speech"  # Twilio listens for speech as well as keys


@pytest.mark.parametrize("sink_kind", [Refusing, Failing])
def test_an_answer_not_stored_is_not_thanked_on_twilio(cli, sink_kind):
    sink = sink_kind(FLOW)
    hooks = Webhooks(sink)
    sid = "CA" + "7" * 32
    try:
        for i, answer in enumerate(
            ({"Digits": "1"}, {"Digits": "2"}, {"SpeechResult": "도와주세요", "Confidence": "0.9"})
        ):
            token = f"t{i}"
            sink.call_ids[token], sink.started = sid, sink.started | {token}
            status, body = hooks.post("gather", token, sid, answer, "?asked=1")
            assert status == 200 and "죄송합니다" in body and "<Hangup />" in body
            assert "확인되었습니다" not in body and "담당 복지" not in body  # no thanks
        assert [key[2] for key in sink.keys] == ["acknowledged", "help_requested", "help_requested"]
        # A call-back's answer not stored: the call-back still ends with its IVR, without thanks.
        sink.call_ids["back"], sink.started = sid, sink.started | {"back"}
        status, body = hooks.post("gather", "back", sid, {"Digits": "1"}, "?asked=1&inbound=1")
        assert "죄송합니다" in body and [(e.token, e.kind) for e in sink.events] == [("back", "ended")]
    finally:
        hooks.stop()


def test_twilio_carries_unclear_answers_in_the_signed_url_then_offers_keys_only(cli):
    sink = RecordingSink(FLOW)
    hooks = Webhooks(sink)
    sid = "CA" + "8" * 32
    sink.call_ids["u"], sink.started = sid, {"u"}
    try:
        query = "?asked=1"
        for expected_input in ("dtmf speech", "dtmf"):
            _, body = hooks.post("gather", "u", sid, {"SpeechResult": "여보세요", "Confidence": "0.9"}, query)
            gather = ET.fromstring(body).find("Gather")
            assert gather.get("input") == expected_input
            query = "?" + gather.get("action").split("?", 1)[1]
        assert query == "?asked=3&unclear=2&keys=1"
        _, body = hooks.post("gather", "u", sid, {}, query)  # silence on the keys-only question: no answer
        assert "응답이 확인되지 않아" in body and sink.keys == []
        assert [text for _, text, _ in sink.heard] == ["여보세요", "여보세요"]  # kept for the officer
    finally:
        hooks.stop()
