"""Twilio faults and forgeries (issue 17): a webhook counts only for its own call, a lost call settles, a locked
database stalls nothing else, `serve` records reports, and two runs share one trunk in a real scheduler process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import person_row, write_csv
from live import always_open, free_port, outcomes_by_name
from recording_sink import RecordingSink
from sqlmodel import select
from test_twilio import ENV, EXPECTED, PUBLIC, cloud, twilio_trunks  # noqa: F401 (cloud is a fixture)
from twilio_fake import TOKEN, FakeCall, FakeTwilio
from typer.testing import CliRunner

from safecall.cli import create_app
from safecall.clock import SystemClock
from safecall.errors import TrunkError
from safecall.ivr import load_flow
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.speech import analyser
from safecall.store import Attempt, CampaignRun, MemberState, Person, RunMember
from safecall.telephony.base import CallRequest, LineResult
from safecall.telephony.twilio.webhooks import WebhookServer, create_webhook_app

CLI = [sys.executable, "-m", "safecall"]  # the installed command, as a process


def open_calls(cli, count: int) -> tuple[Services, list[tuple[str, str]]]:
    """A run whose first `count` members are in a call whose IVR began: (token, CallSid) of each."""
    services = Services.open(load_instance(cli.root, ENV), SystemClock())
    campaign = services.campaign("weekly-safe-call")
    now = SystemClock().now()
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=now)
    calls = []
    with services.db.transaction() as session:
        for i, member in enumerate(session.exec(select(RunMember).order_by(RunMember.id)).all()[:count]):
            member.state, member.attempts_made = MemberState.IN_CALL, 1
            session.add(member)
            token, sid = f"token-{i}-" + "x" * 20, f"CA{i:032d}"
            session.add(
                Attempt(
                    run_id=run.id,
                    member_id=member.id,
                    person_id=member.person_id,
                    number=1,
                    phone="+821001230000",
                    token=token,
                    placed_at=now,
                    trunk_call_id=sid,
                    ivr_started_at=now,
                )
            )
            calls.append((token, sid))
    return services, calls


def attempts_by_token(services: Services) -> dict[str, Attempt]:
    with services.db.session() as session:
        return {a.token: a for a in session.exec(select(Attempt))}


class Webhooks:
    """The real webhook app on loopback over `sink`, and a fake Twilio that signs what it posts to it."""

    def __init__(self, sink, **options):
        port = free_port()
        app = create_webhook_app(
            public_base_url=PUBLIC,
            auth_token=TOKEN,
            sink=sink,
            now=SystemClock().now,
            on_event=lambda e: None,
            **options,
        )
        self.server = WebhookServer(app, "127.0.0.1", port).start()
        analyser()  # the server began loading it: the fake's 10 s wait is for one answer, not for the model
        self.twilio = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", {})

    def post(self, kind: str, token: str, sid: str, params: dict, query: str = "") -> tuple[int, str]:
        return self.twilio.post(
            FakeCall(sid, "+821001230000", {}, "-"), f"{PUBLIC}/twilio/{kind}/{token}{query}", params
        )

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def people(cli, tmp_path):
    always_open(cli)
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "r.csv", [person_row(f"사람{i}", f"010-0123-000{i}") for i in range(3)])),
    )


def test_a_keypress_with_a_foreign_callsid_or_a_bad_key_records_nothing_for_anyone(cli, people):
    services, [(mine, my_sid), (other, other_sid), _] = open_calls(cli, 3)
    hooks = Webhooks(services.lifecycle)
    try:
        for token, sid in ((mine, other_sid), (other, my_sid), (mine, "CA" + "9" * 32), (mine, "")):
            status, body = hooks.post("gather", token, sid, {"Digits": "1"}, "?asked=1")
            assert status == 200 and "<Hangup />" in body and "확인되었습니다" not in body, (token, sid)
        status, body = hooks.post("voice", other, my_sid, {"CallStatus": "in-progress"})
        assert "<Hangup />" in body and "Gather" not in body
        assert hooks.post("status", mine, other_sid, {"CallStatus": "completed"})[0] == 204  # another call's end
        assert attempts_by_token(services)[mine].status == "placing"
        # The attempt's own call, but not one key of the flow: asked again, nothing stored.
        for digits in ("1' OR 1=1--", "12", "3"):
            status, body = hooks.post("gather", mine, my_sid, {"Digits": digits}, "?asked=1")
            assert status == 200 and "잘못 누르셨습니다" in ET.fromstring(body).find("Gather/Say").text, digits
        assert all(a.digit is None and a.disposition is None for a in attempts_by_token(services).values())
        status, body = hooks.post("gather", mine, my_sid, {"Digits": "1"}, "?asked=2")
        assert "확인되었습니다" in body
        stored = attempts_by_token(services)
        assert (stored[mine].digit, stored[mine].disposition) == ("1", "acknowledged")
        assert [a.digit for t, a in stored.items() if t != mine] == [None, None]
    finally:
        hooks.stop()


def test_the_voice_webhook_waits_a_little_for_the_callsid_and_starts_one_session(cli):
    sink = RecordingSink(load_flow(cli.root / "ivr", "safe-call"))
    hooks = Webhooks(sink, call_id_wait=1.5)
    try:
        # The webhook outruns the trunk noting the CallSid that calls.create returned.
        threading.Timer(0.4, sink.note_call_id, ("early", "CA" + "1" * 32)).start()
        status, body = hooks.post("voice", "early", "CA" + "1" * 32, {"CallStatus": "in-progress"})
        assert status == 200 and ET.fromstring(body).find("Gather") is not None and sink.started == {"early"}
        # A second session for the same attempt: hung up.
        assert "Gather" not in hooks.post("voice", "early", "CA" + "1" * 32, {"CallStatus": "in-progress"})[1]
        # A CallSid that is never noted: refused once the bounded wait is over (it asked again meanwhile).
        status, body = hooks.post("voice", "never", "CA" + "2" * 32, {"CallStatus": "in-progress"})
        assert "<Hangup />" in body and "Gather" not in body and sink.asked.count("never") > 1
        assert sink.started == {"early"}
    finally:
        hooks.stop()


def test_a_call_twilio_cannot_find_is_retried_and_the_run_goes_on(cli, cloud):
    """A call placed before a restart that Twilio answers 404 for: settled as unknown, the person called again."""
    services = Services.open(load_instance(cli.root, ENV), SystemClock())
    campaign = services.campaign("weekly-safe-call")
    now = SystemClock().now()
    run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=now)
    lost = "CA" + "e" * 32
    cloud.fetch_failures[lost] = 404
    with services.db.transaction() as session:
        person = session.exec(select(Person).where(Person.name == "응답")).one()
        member = session.exec(select(RunMember).where(RunMember.person_id == person.id)).one()
        member.state, member.attempts_made = MemberState.IN_CALL, 1
        session.add(member)
        session.add(
            Attempt(
                run_id=run.id,
                member_id=member.id,
                person_id=person.id,
                number=1,
                phone=person.phone,
                token="lost-token-00000000000000",
                placed_at=now,
                trunk_call_id=lost,
            )
        )
    try:
        services.dialer(campaign).run(run.id)
    finally:
        services.close_trunks()
    members, attempts = outcomes_by_name(services)
    assert members == EXPECTED
    assert attempts["응답"] == ["unknown", "acknowledged"]
    # The trunk itself: 404 is an 'ended unknown' report; any other refusal stays a TrunkError.
    trunk = services.build_trunk()
    try:
        request = CallRequest(
            token="t",
            number="+821001230000",
            attempt_number=1,
            week=run.week_start,
            placed_at=now,
            ring_timeout=30,
            max_call_seconds=180,
            flow=services.campaign_rules("weekly-safe-call").flow,
        )
        [event] = trunk.reconcile(request, lost)
        assert (event.kind, event.result) == ("ended", LineResult.UNKNOWN)
        cloud.fetch_failures[lost] = 500
        with pytest.raises(TrunkError):
            trunk.recover(request, lost)
    finally:
        trunk.close()


def test_a_blocked_destination_fails_that_person_only_and_error_texts_are_masked(cli, cloud, caplog):
    blocked = next(n for n, b in cloud.scripts.items() if b == "busy")
    cloud.scripts[blocked] = "blocked"  # 21216: Twilio will not call this one number
    from live import run_live_campaign

    services, _ = run_live_campaign(cli, ENV)
    members, attempts = outcomes_by_name(services)
    assert members == EXPECTED
    assert attempts["통화중"] == ["failed"] * 4 and attempts["응답"] == ["acknowledged"]
    assert blocked not in caplog.text and blocked[-8:] not in caplog.text and "+********" + blocked[-4:] in caplog.text


def test_serve_records_status_callbacks(cli, people):
    services, [(token, sid), _] = open_calls(cli, 2)
    port = int(free_port())
    cli.set_trunks(twilio_trunks("http://127.0.0.1:9", port))
    result = {}
    server = threading.Thread(
        target=lambda: result.update(
            out=CliRunner()
            .invoke(create_app(environ=ENV), ["--config", str(cli.root), "serve", "--seconds", "4"])
            .output
        )
    )
    server.start()
    twilio = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", {})
    call = FakeCall(sid, "+821001230000", {}, "-")
    for _ in range(100):
        try:
            status, _ = twilio.post(
                call, f"{PUBLIC}/twilio/status/{token}", {"CallStatus": "completed", "CallDuration": "20"}
            )
            break
        except OSError:
            time.sleep(0.05)
    server.join()
    assert status == 204 and "Stopped." in result["out"]
    attempt = attempts_by_token(services)[token]
    assert (attempt.status, attempt.disposition) == ("done", "answered_no_key")
    with services.db.session() as session:
        member = session.get(RunMember, attempt.member_id)
    assert member.state == MemberState.PENDING and member.next_attempt_at is not None  # to be called again


def test_a_database_lock_during_a_keypress_stalls_no_other_request(cli, people):
    services, [(pressing, pressing_sid), (other, other_sid), _] = open_calls(cli, 3)
    hooks = Webhooks(services.lifecycle, sink_timeout=8.0)
    lock = sqlite3.connect(cli.root / "data" / "safecall.db", timeout=1, isolation_level=None)
    answers = {}
    try:
        lock.execute("BEGIN IMMEDIATE")
        lock.execute("UPDATE person SET address = address")  # the write lock, held for several seconds

        def press() -> None:
            answers["key"] = hooks.post("gather", pressing, pressing_sid, {"Digits": "1"}, "?asked=1")

        keypress = threading.Thread(target=press)
        keypress.start()
        time.sleep(0.5)  # the keypress is (most likely) waiting for the lock by now; nothing below depends on it
        status, body = hooks.post("gather", other, other_sid, {}, "?asked=1")  # another call's timeout: asked again
        assert status == 200 and ET.fromstring(body).find("Gather") is not None
        status, _ = hooks.post("status", other, other_sid, {"CallStatus": "ringing"})
        assert status == 204
        # Both were answered while the keypress still waited (it gets its answer only after sink_timeout, 8 s).
        assert "key" not in answers, "an unrelated request waited behind the keypress"
        keypress.join(timeout=60)
        # The keypress could not be stored in time: an apology (not Twilio's error), while the lock is still held
        # (it is released only below), so the person did not wait for the database.
        assert (
            answers["key"][0] == 200 and "죄송합니다" in answers["key"][1] and "확인되었습니다" not in answers["key"][1]
        )
        assert lock.in_transaction
    finally:
        lock.rollback()
        lock.close()
    # Its worker thread still stores it once the lock is gone: the person did press 1.
    deadline = time.monotonic() + 10
    while attempts_by_token(services)[pressing].digit is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert attempts_by_token(services)[pressing].disposition == "acknowledged"
    hooks.stop()


def test_two_runs_share_one_twilio_trunk_in_a_real_scheduler_process(cli, tmp_path):
    """Two campaigns open at once on one trunk, dialled by `safecall scheduler run`: one webhook server, one
    budget of channels and calls per second across both (from the fake's own log), both lists right."""
    port = free_port()
    people = {
        "사직동": [("가응답", "ack"), ("가도움", "help"), ("가무입력", "no_key"), ("가통화중", "busy")],
        "청운효자동": [("나응답", "ack"), ("나통화중", "busy"), ("나말함", "say:네 괜찮아요:0.92")],
    }
    numbers, rows = {}, []
    for d, (dong, group) in enumerate(people.items()):
        for i, (name, behaviour) in enumerate(group):
            numbers[f"+82100124{d}{i:03d}"] = behaviour
            rows.append(person_row(name, f"010-0124-{d}{i:03d}", dong=dong))
    cloud = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", numbers).start()
    # The busy line's calls outlast the spacing between calls (the channel limit binds); the others are quick
    # (the calls-per-second limit binds).
    cloud.ring_seconds = {"busy": 1.5, "no_key": 1.5}
    try:
        cli.set_trunks(
            twilio_trunks(cloud.base_url, port)
            .replace("channels = 4", "channels = 2")
            .replace("calls_per_second = 50", "calls_per_second = 2")
        )
        always_open(cli)
        campaigns = cli.root / "campaigns"
        text = (campaigns / "weekly-safe-call.toml").read_text(encoding="utf-8")
        (campaigns / "weekly-safe-call.toml").write_text(
            text.replace("dongs = []", 'dongs = ["사직동"]'), encoding="utf-8"
        )
        (campaigns / "district-check.toml").write_text(
            text.replace('name = "weekly-safe-call"', 'name = "district-check"').replace(
                "dongs = []", 'dongs = ["청운효자동"]'
            ),
            encoding="utf-8",
        )
        cli("recipients", "import", str(write_csv(tmp_path / "r.csv", rows)))
        process = subprocess.Popen(
            [*CLI, "--config", str(cli.root), "scheduler", "run", "--interval", "0.5"],
            env={**os.environ, **ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 150
            closed = False
            while time.monotonic() < deadline and not closed:
                time.sleep(0.5)
                assert process.poll() is None, process.stderr.read()
                with cli.db().session() as session:
                    runs = session.exec(select(CampaignRun)).all()
                closed = len(runs) == 2 and all(run.status == "closed" for run in runs)
            assert closed, "the two runs did not finish"
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
        assert process.returncode == 0, stderr
        events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
        assert not [e for e in events if e["event"] in ("dialer_error", "tick_failed")], stderr
        assert sorted(e["campaign"] for e in events if e["event"] == "run_launched") == [
            "district-check",
            "weekly-safe-call",
        ]
    finally:
        cloud.stop()
    assert cloud.errors == []
    services = Services.open(load_instance(cli.root, ENV), SystemClock())
    members, attempts = outcomes_by_name(services)
    assert members == {
        "가응답": "acknowledged",
        "가도움": "help_requested",
        "가무입력": "unreachable",
        "가통화중": "unreachable",
        "나응답": "acknowledged",
        "나통화중": "unreachable",
        "나말함": "acknowledged",
    }
    assert (
        attempts["가무입력"] == ["answered_no_key"] * 4 and attempts["가통화중"] == attempts["나통화중"] == ["busy"] * 4
    )
    with services.db.session() as session:
        spoken = session.exec(select(Attempt).where(Attempt.digit == "speech")).one()
    assert (spoken.speech_text, spoken.speech_confidence) == ("네 괜찮아요", 0.92)
    # Every webhook of every call of both runs reached the one server and was answered.
    assert all(status in (200, 204) for call in cloud.calls.values() for _, _, status, _ in call.webhooks)
    # Calls per second across both runs (2 a second: never 4 requests within one second) ...
    created = sorted(t for t, _ in cloud.creates)
    assert len(created) == 16
    assert all(later - first > 1.0 for first, later in zip(created, created[3:], strict=False)), created
    # ... and channels (2, and reached): calls overlapping at any moment, from creation to their final status.
    moments = sorted(
        [(c.start_time, 1) for c in cloud.calls.values()] + [(c.ended_at, -1) for c in cloud.calls.values()]
    )
    busy = peak = 0
    for _, change in moments:
        busy += change
        peak = max(peak, busy)
    assert peak == 2
    services.close()
