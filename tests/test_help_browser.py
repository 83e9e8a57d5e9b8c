"""The officer plays a message left on "help" on the call-back page, in real headless chromium (issue 30, item 1):
an <audio> fed by an officer-only route, every play in the audit; a Twilio recording is fetched from the trunk's own
API address (the local fake), an Asterisk one read from the trunk's message folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import timedelta

import pytest
from asterisk_standin import write_wav
from conftest import scripted_trunks
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from sqlmodel import select
from test_web_browser import CHROMEDRIVER, CHROMIUM, log_in
from twilio_fake import SID, TOKEN, FakeTwilio, wav_bytes
from web_fixtures import make_app, office_with_a_week, served

from safecall.store import Attempt, AuditEvent, HelpCall, Person, VisitTask

RECORDING = "RE" + "ab" * 16


@pytest.fixture
def player():
    """Chromium that may play audio a script starts (headless has no hand to press play)."""
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), (
        "apt-get install chromium chromium-driver (.ci/run does)"
    )
    profile = tempfile.mkdtemp(prefix="safecall-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=412,915",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_the_officer_plays_the_message_on_the_call_back_page_and_each_play_is_audited(cli, tmp_path, player):
    office_with_a_week(cli, tmp_path)  # 최도움 pressed 2: a call-back task
    messages = tmp_path / "messages"
    messages.mkdir()
    write_wav(messages / "help-4-00aa11bb.wav", 2)
    fake = FakeTwilio("https://safecall.example.org", "http://127.0.0.1:9", {}).start()
    fake.recordings[RECORDING] = wav_bytes(3)
    cli.set_trunks(
        scripted_trunks({"+821001230004": ["help"]})
        + f'''
[trunks.pbx]
type = "asterisk"
ami_username = "safecall"
ami_secret = {{ env = "TEST_AMI_SECRET" }}
message_dir = "/var/spool/asterisk/safecall-messages"
message_dir_here = "{messages}"
[trunks.cloud]
type = "twilio"
account_sid = "{SID}"
auth_token = {{ env = "TEST_TWILIO_TOKEN" }}
from_number = "+827000000001"
public_base_url = "https://safecall.example.org"
api_base_url = "{fake.base_url}"
'''
    )
    cli.environ.update({"TEST_AMI_SECRET": "x", "TEST_TWILIO_TOKEN": TOKEN})
    with cli.db().transaction() as session:
        task = session.exec(select(VisitTask).where(VisitTask.kind == "callback")).one()
        attempt = session.exec(select(Attempt).where(Attempt.person_id == task.person_id, Attempt.digit == "2")).one()
        when = cli.clock.now()
        asterisk = HelpCall(
            attempt_id=attempt.id,
            run_id=task.run_id,
            person_id=task.person_id,
            transfer="no_answer",
            transfer_at=when,
            message_ref="/var/spool/asterisk/safecall-messages/help-4-00aa11bb.wav",
            message_seconds=2.0,
            message_at=when,
        )
        session.add(asterisk)
        # A second call for help from the same person this week (a call-back), its message on Twilio.
        session.add(
            Attempt(
                run_id=task.run_id,
                member_id=attempt.member_id,
                person_id=task.person_id,
                number=9,
                phone=attempt.phone,
                token="help-browser-test-second-call",
                placed_at=when,
                status="done",
                digit="2",
                disposition="help_requested",
                inbound=True,
            )
        )
        session.flush()
        second = session.exec(select(Attempt).where(Attempt.token == "help-browser-test-second-call")).one()
        twilio = HelpCall(
            attempt_id=second.id,
            run_id=task.run_id,
            person_id=task.person_id,
            transfer="connected",
            transfer_at=when + timedelta(minutes=5),
            message_ref=f"twilio:{SID}/{RECORDING}",
            message_seconds=3.0,
            message_at=when + timedelta(minutes=6),
        )
        session.add(twilio)
        session.flush()
        task_id, ids = task.id, (asterisk.id, twilio.id)
    try:
        with served(make_app(cli)) as base:
            log_in(player, base, "officer")
            # The call-back list says what came of each call for help and leads to the message.
            player.get(f"{base}/callbacks")
            card = player.find_element(By.ID, f"callback-{task_id}")
            assert "당직자가 받지 않음" in card.text and "당직자와 연결됨" in card.text
            links = card.find_elements(By.CSS_SELECTOR, "a.message")
            assert [link.text for link in links] == ["남기신 말씀 듣기 (2초)", "남기신 말씀 듣기 (3초)"]
            links[0].click()
            assert player.current_url == f"{base}/task/{task_id}#help-{ids[0]}"
            page = player.find_element(By.TAG_NAME, "main").text
            assert "당직자가 받지 않음" in page and "당직자와 연결됨" in page and "남기신 말씀 (2초" in page
            audios = player.find_elements(By.TAG_NAME, "audio")
            assert [a.get_attribute("src") for a in audios] == [f"{base}/task/{task_id}/message/{i}" for i in ids]
            for index in range(2):
                outcome = player.execute_async_script(
                    "const done = arguments[arguments.length - 1],"
                    " audio = document.querySelectorAll('audio')[arguments[0]];"
                    "audio.addEventListener('ended', () => done('ended ' + audio.duration.toFixed(0)));"
                    "audio.addEventListener('error', () => done('error ' + (audio.error && audio.error.code)));"
                    "audio.play().catch(e => done('refused ' + e.name));",
                    index,
                )
                assert outcome == f"ended {2 + index}", outcome  # the browser decoded and played the whole WAV
            # A message that is not this task's is not found (and the attempt is in the audit too).
            player.get(f"{base}/task/{task_id}/message/{ids[1] + 100}")
            assert "(404)" in player.find_element(By.TAG_NAME, "body").text
            # A visit team member never hears an officer's call-back messages, and nothing is fetched for them.
            player.delete_all_cookies()
            log_in(player, base, "team1")
            fetched = len(fake.recording_fetches)
            player.get(f"{base}/task/{task_id}/message/{ids[1]}")
            assert "복지 담당자만" in player.find_element(By.TAG_NAME, "body").text
            assert len(fake.recording_fetches) == fetched
    finally:
        fake.stop()
    assert fake.recording_fetches and set(fake.recording_fetches) == {RECORDING}  # from the trunk's API address only
    with cli.db().session() as session:
        plays = session.exec(select(AuditEvent).where(AuditEvent.action == "web.play_message")).all()
        person = session.get(Person, task.person_id)
    assert {(p.actor, p.subject) for p in plays} == {("web:officer", f"task {task_id}")}
    played = [p.detail for p in plays if "missing" not in p.detail]
    assert {f"message={i}" for i in ids} == {d.split(" ", 1)[1] for d in played}
    assert [p.detail for p in plays if "missing" in p.detail] == [f"message={ids[1] + 100} missing: no such message"]
    assert person.name == "최도움"
