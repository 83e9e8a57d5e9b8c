"""A human on "help" on Twilio (issue 30, item 1): <Dial timeout> to the duty officer and <Record maxLength> for the
message, with their signed action callbacks, through the real webhook server and SDK against the local fake."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from conftest import person_row, write_csv
from live import always_open, free_port, run_live_campaign
from sqlmodel import select
from test_help_asterisk import SATURDAY, TUESDAY_MORNING, turn_help_on
from test_twilio import ENV, PUBLIC, twilio_trunks
from twilio_fake import SID, FakeTwilio

from safecall.clock import ScaledClock
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, HelpCall, Person, VisitTask

PEOPLE = {"연결": "+821001230001", "부재": "+821001230002", "끊음": "+821001230003", "실패": "+821001230004"}


def help_campaign(cli, tmp_path, start, dial_status, message_seconds, hangup_in_record=()):
    port = free_port()
    fake = FakeTwilio(PUBLIC, f"http://127.0.0.1:{port}", {number: "help" for number in PEOPLE.values()}).start()
    fake.dial_status.update(dial_status)
    fake.message_seconds.update(message_seconds)
    fake.hangup_in_record.update(hangup_in_record)
    cli.set_trunks(twilio_trunks(fake.base_url, port))
    always_open(cli)
    turn_help_on(cli.root)
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv", [person_row(name, "010-0123-" + number[-4:]) for name, number in PEOPLE.items()]
            )
        ),
    )
    services = Services.open(load_instance(cli.root, ENV), ScaledClock(start, 1.0))
    try:
        run_live_campaign(cli, ENV, services=services)
    finally:
        fake.stop()
    with services.db.session() as session:
        rows = {}
        for person in session.exec(select(Person)):
            attempt = session.exec(select(Attempt).where(Attempt.person_id == person.id)).one()
            rows[person.name] = (
                attempt,
                session.exec(select(HelpCall).where(HelpCall.attempt_id == attempt.id)).first(),
                session.exec(select(VisitTask).where(VisitTask.person_id == person.id)).one(),
            )
    calls = {call.to: call for call in fake.calls.values()}
    return services, fake, rows, calls


def test_in_office_hours_help_is_dialled_and_a_missed_transfer_ends_in_a_recorded_message(cli, tmp_path):
    services, fake, rows, calls = help_campaign(
        cli,
        tmp_path,
        TUESDAY_MORNING,
        dial_status={
            PEOPLE["연결"]: ("completed", 48),
            PEOPLE["부재"]: ("no-answer", 0),
            PEOPLE["끊음"]: ("busy", 0),
            PEOPLE["실패"]: ("failed", 0),
        },
        message_seconds={PEOPLE["부재"]: 4, PEOPLE["끊음"]: 3},
        hangup_in_record={PEOPLE["끊음"]},
    )
    for name, (attempt, _, task) in rows.items():  # help is stored, and the task made, whatever the transfer came to
        assert (attempt.digit, attempt.disposition, task.kind) == ("2", "help_requested", "callback"), name

    connected = calls[PEOPLE["연결"]]
    assert connected.dialled == ("+82221480001", "25")  # <Dial timeout> is the flow's ring time
    after_key = ET.fromstring(next(body for url, _, _, body in connected.webhooks if "/twilio/gather/" in url))
    assert [child.tag for child in after_key] == ["Say", "Dial"] and "담당자에게 연결해 드리겠습니다" in after_key[
        0
    ].text
    assert after_key[1].get("action").startswith(f"{PUBLIC}/twilio/help/dial/")
    _, help_call, _ = rows["연결"]
    assert (help_call.transfer, help_call.connected_seconds, help_call.message_ref) == ("connected", 48.0, None)
    assert connected.recorded_max is None  # nobody is asked for a message after speaking with the officer

    missed = calls[PEOPLE["부재"]]
    after_dial = ET.fromstring(next(body for url, _, _, body in missed.webhooks if "/twilio/help/dial/" in url))
    assert [child.tag for child in after_dial] == ["Say", "Record"] and "받을 수 없습니다" in after_dial[0].text
    record = after_dial[1]
    assert (record.get("maxLength"), record.get("playBeep"), record.get("finishOnKey")) == ("60", "true", "#")
    assert record.get("recordingStatusCallback").startswith(f"{PUBLIC}/twilio/help/recording/")
    _, help_call, _ = rows["부재"]
    assert help_call.transfer == "no_answer" and help_call.message_seconds == 4.0
    assert (
        help_call.message_ref.startswith(f"twilio:{SID}/RE") and help_call.message_ref.split("/")[1] in fake.recordings
    )
    assert "남겨 주신 말씀" in next(body for url, _, _, body in missed.webhooks if "/twilio/help/message/" in url)

    # Busy, then a hang-up during the message: the call ends, and the recording's status callback alone tells of the
    # message, which is kept. The recording is named by its ids only, never by an address a webhook gave.
    _, help_call, _ = rows["끊음"]
    assert (help_call.transfer, help_call.message_seconds) == ("busy", 3.0)
    assert "http" not in help_call.message_ref
    # A failed transfer, then silence: no message, the task all the same.
    _, help_call, _ = rows["실패"]
    assert (help_call.transfer, help_call.message_ref) == ("failed", None)


def test_outside_office_hours_help_goes_straight_to_the_message(cli, tmp_path):
    _, _, rows, calls = help_campaign(cli, tmp_path, SATURDAY, dial_status={}, message_seconds={PEOPLE["부재"]: 2})
    for call in calls.values():
        assert call.dialled is None and call.recorded_max == "60"
    _, help_call, _ = rows["부재"]
    assert help_call.transfer is None and help_call.message_seconds == 2.0


def test_help_callbacks_must_be_signed(cli):
    from recording_sink import RecordingSink
    from starlette.testclient import TestClient

    from safecall.ivr import load_flow
    from safecall.telephony.twilio.webhooks import create_webhook_app

    sink = RecordingSink(load_flow(cli.root / "ivr", "safe-call"))
    app = create_webhook_app(
        public_base_url=PUBLIC,
        auth_token="not-the-token",
        sink=sink,
        now=lambda: TUESDAY_MORNING,
        on_event=lambda event: None,
    )
    client = TestClient(app)
    for step, params in (("dial", {"DialCallStatus": "completed"}), ("message", {"RecordingSid": "RE" + "0" * 32})):
        response = client.post(f"/twilio/help/{step}/some-token", data={"CallSid": "CA1", **params})
        assert response.status_code == 403
    assert sink.keys == [] and sink.events == []


def test_a_failing_record_of_the_transfer_never_turns_into_an_apology(cli):
    """The help is stored before the transfer: if keeping the transfer's result fails,
    the person still gets the message."""
    from recording_sink import RecordingSink
    from starlette.testclient import TestClient
    from twilio.request_validator import RequestValidator
    from twilio_fake import TOKEN

    from safecall.ivr import load_flow
    from safecall.telephony.twilio.webhooks import APOLOGY, create_webhook_app

    flow = load_flow(cli.root / "ivr", "safe-call")
    flow = flow.model_copy(update={"help": flow.help.model_copy(update={"enabled": True})})

    class Broken(RecordingSink):
        def record_transfer(self, *args, **kwargs):
            raise RuntimeError("database is locked")

    sink = Broken(flow)
    sink.note_call_id("tok", "CA" + "1" * 32)
    sink.started.add("tok")
    app = create_webhook_app(
        public_base_url=PUBLIC, auth_token=TOKEN, sink=sink, now=lambda: SATURDAY, on_event=lambda event: None
    )
    params = {"CallSid": "CA" + "1" * 32, "DialCallStatus": "busy", "DialCallDuration": "0"}
    url = f"{PUBLIC}/twilio/help/dial/tok"
    response = TestClient(app).post(
        "/twilio/help/dial/tok",
        data=params,
        headers={"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)},
    )
    assert response.status_code == 200
    twiml = ET.fromstring(response.text)
    assert [child.tag for child in twiml] == ["Say", "Record"] and APOLOGY not in response.text
