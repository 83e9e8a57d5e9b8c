"""A human on "help" over the Asterisk stand-in (issue 30, item 1): EXEC Dial to the duty officer, RECORD FILE for the
message, over real sockets, into the real database; the call-back task is there whatever the call came to."""

from __future__ import annotations

import wave
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from asterisk_standin import AsteriskStandIn, HelpAnswer
from conftest import person_row, write_csv
from live import always_open, free_port
from sqlmodel import select
from test_asterisk import AMI_ENV, asterisk_trunks

from safecall.clock import ScaledClock
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, HelpCall, Person, VisitTask

SEOUL = ZoneInfo("Asia/Seoul")
TUESDAY_MORNING = datetime(2026, 12, 8, 10, 0, tzinfo=SEOUL)  # an office day, in office hours
SATURDAY = datetime(2026, 12, 12, 10, 0, tzinfo=SEOUL)
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=SEOUL)  # a Friday, and a public holiday (성탄절)
OFFICER_DIAL = "PJSIP/0221480001@carrier"


def turn_help_on(root, transfer_number: str = "02-2148-0001") -> None:
    path = root / "ivr" / "safe-call.toml"
    text = path.read_text(encoding="utf-8")
    assert "enabled = false" in text and 'transfer_number = ""' in text
    text = text.replace("enabled = false", "enabled = true").replace(
        'transfer_number = ""', f'transfer_number = "{transfer_number}"'
    )
    path.write_text(text.replace("ring_seconds = 20", "ring_seconds = 25"), encoding="utf-8")


def said(call) -> list[str]:
    return [line for side, line in call.agi_transcript if side == ">"]


def call_backs(cli, tmp_path, start: datetime, answers: dict[str, HelpAnswer]):
    """People waiting for their call ring back and press 2;
    returns (services, stand-in calls by caller, messages dir)."""
    messages = tmp_path / "messages"
    messages.mkdir(exist_ok=True)
    agi_port = free_port()
    stand_in = AsteriskStandIn({}, fastagi=("127.0.0.1", agi_port)).start()
    stand_in.help_answers.update(answers)
    cli.set_trunks(
        asterisk_trunks(stand_in.port, agi_port, f'help_dial = "{OFFICER_DIAL}"\nmessage_dir = "{messages}"')
    )
    always_open(cli)
    turn_help_on(cli.root)
    cli(
        "recipients",
        "import",
        str(
            write_csv(tmp_path / "r.csv", [person_row(f"도움{i}", caller) for i, caller in enumerate(answers, start=1)])
        ),
    )
    clock = ScaledClock(start, 1.0)  # the office hours are read from this clock, never from the wall clock
    services = Services.open(load_instance(cli.root, AMI_ENV), clock)
    campaign = services.campaign("weekly-safe-call")
    launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now())
    services.trunk()
    try:
        calls = {caller: stand_in.call_in(caller, "help") for caller in answers}
    finally:
        services.close_trunks()
        stand_in.stop()
    return services, calls, messages


def help_rows(services) -> dict[str, tuple[HelpCall | None, VisitTask | None, Attempt]]:
    """By the person's phone: their help record, their call-back task and their call-back's attempt."""
    with services.db.session() as session:
        rows = {}
        for attempt, phone in session.exec(select(Attempt, Person.phone).join(Person, Person.id == Attempt.person_id)):
            help_call = session.exec(select(HelpCall).where(HelpCall.attempt_id == attempt.id)).first()
            task = session.exec(select(VisitTask).where(VisitTask.person_id == attempt.person_id)).first()
            rows["0" + phone[3:]] = (help_call, task, attempt)
    return rows


def test_in_office_hours_help_is_put_through_and_an_unanswered_transfer_ends_in_a_message(cli, tmp_path):
    services, calls, messages = call_backs(
        cli,
        tmp_path,
        TUESDAY_MORNING,
        {
            "01001230001": HelpAnswer("NOANSWER", message_seconds=3),
            "01001230002": HelpAnswer("ANSWER", answered_seconds=42),
            "01001230003": HelpAnswer("BUSY", message_seconds=2, hangup_in="record"),
            "01001230004": HelpAnswer("CHANUNAVAIL", message_seconds=0, hangup_in="record"),
            "01001230005": HelpAnswer("CANCEL", hangup_in="dial"),
            "01001230006": HelpAnswer("NOANSWER", message_seconds=4, finish_with_hash=True),
        },
    )
    rows = help_rows(services)
    # The answer was stored first (the keypress), then the officer dialled through the trunk's help_dial.
    unanswered = said(calls["01001230001"])
    dial = unanswered.index(f'EXEC Dial "{OFFICER_DIAL},25,g"')
    assert unanswered[:dial] == [
        "ANSWER",
        "GET DATA safecall/prompt-greeting 5000 1",
        'STREAM FILE safecall/prompt-help_transfer ""',
    ]
    record = next(line for line in unanswered if line.startswith("RECORD FILE"))
    assert unanswered[dial + 1 :] == [
        "GET VARIABLE DIALSTATUS",
        'STREAM FILE safecall/prompt-help_no_officer ""',
        record,
        'STREAM FILE safecall/closing-help_message_thanks ""',
        'SET VARIABLE SAFECALL_RESULT "help_requested"',
        "HANGUP",
    ]
    assert record.startswith(f"RECORD FILE {messages}/help-") and record.endswith(' wav "#" 60000 BEEP s=10')
    help_call, task, attempt = rows["01001230001"]
    assert attempt.digit == "2" and attempt.disposition == "help_requested" and attempt.inbound
    assert task.kind == "callback" and task.status == "open"
    assert help_call.transfer == "no_answer" and help_call.message_seconds == 3.0
    assert attempt.keyed_at <= help_call.transfer_at <= help_call.message_at  # help stored before any transfer
    assert help_call.message_ref == record.split()[2] + ".wav"
    with wave.open(help_call.message_ref) as recorded:  # the file the stand-in wrote where Asterisk would
        assert recorded.getnframes() == 3 * 8000

    # The officer answered: the connection is kept on the task's record, with how long they spoke; no message.
    connected, task, _ = rows["01001230002"]
    assert (
        connected.transfer == "connected" and connected.connected_seconds == 42.0 and connected.transfer_at is not None
    )
    assert connected.message_ref is None and task.kind == "callback"
    assert not any(line.startswith("RECORD FILE") for line in said(calls["01001230002"]))
    assert "GET VARIABLE ANSWEREDTIME" in said(calls["01001230002"])

    # Busy, then a hang-up during the message: what was said before is kept; the task is there.
    busy, task, _ = rows["01001230003"]
    assert (busy.transfer, busy.message_seconds, task.kind) == ("busy", 2.0, "callback")
    assert said(calls["01001230003"])[-1].startswith("RECORD FILE")  # nothing more was sent to a dead channel

    # A failed dial, and a hang-up at the beep with nothing said: no message, the task still.
    failed, task, _ = rows["01001230004"]
    assert (failed.transfer, failed.message_ref, task.kind) == ("failed", None, "callback")

    # A hang-up while the officer's phone rang: what the dial came to is read from the dead channel and kept.
    rang, task, attempt = rows["01001230005"]
    assert (rang.transfer, rang.message_ref, task.kind, attempt.disposition) == (
        "no_answer",
        None,
        "callback",
        "help_requested",
    )
    assert said(calls["01001230005"])[-1] == "GET VARIABLE DIALSTATUS"

    # Ended with the # key: the message is kept as any other.
    hashed, _, _ = rows["01001230006"]
    assert hashed.message_seconds == 4.0


@pytest.mark.parametrize("start", [SATURDAY, CHRISTMAS], ids=["saturday", "christmas"])
def test_outside_office_hours_and_on_a_holiday_help_goes_straight_to_the_message(cli, tmp_path, start):
    services, calls, messages = call_backs(
        cli, tmp_path, start, {"01001230001": HelpAnswer("ANSWER", message_seconds=5)}
    )
    lines = said(calls["01001230001"])
    assert not any(line.startswith("EXEC") for line in lines)
    assert lines[2] == 'STREAM FILE safecall/prompt-help_message ""' and lines[3].startswith(
        f"RECORD FILE {messages}/help-"
    )
    help_call, task, _ = help_rows(services)["01001230001"]
    assert help_call.transfer is None and help_call.message_seconds == 5.0 and task.kind == "callback"


def test_a_message_folder_asterisk_cannot_take_as_one_word_is_refused_naming_the_key(cli):
    from safecall.errors import ConfigError

    cli.set_trunks(asterisk_trunks(5038, 4573, 'message_dir = "/var/spool/my messages"'))
    with pytest.raises(ConfigError) as error:
        load_instance(cli.root, AMI_ENV)
    assert (
        "trunks.toml" in str(error.value) and "message_dir" in str(error.value) and "without spaces" in str(error.value)
    )


def test_socket_agi_reads_dial_and_record_replies_a_hang_up_included():
    import io

    from asterisk_standin import agi_exchanges

    from safecall.telephony.asterisk.fastagi import CallerHungUp, SocketAGI

    env, _ = agi_exchanges("agi-ack.txt")
    replies = [
        "200 result=-1 (hangup) endpos=16000",
        "HANGUP",
        "200 result=1 (CANCEL)",
        "200 result=0",
        "511 Command Not Permitted on a dead channel or intercept routine",
    ]
    agi = SocketAGI(io.StringIO("\n".join(env) + "\n" + "\n".join(replies) + "\n"))
    agi.stdout = io.StringIO()
    assert agi.command('RECORD FILE /tmp/x wav "#" 60000 BEEP s=10') == ("-1", "(hangup) endpos=16000")
    assert not agi.hung_up  # the notice comes after the result ...
    assert (
        agi.command("GET VARIABLE DIALSTATUS") == ("1", "(CANCEL)") and agi.hung_up
    )  # ... and is read before the next
    assert agi.command("GET VARIABLE ANSWEREDTIME") == ("0", "")  # unset
    with pytest.raises(CallerHungUp, match="511"):
        agi.command('STREAM FILE safecall/closing-help_message_thanks ""')
    with pytest.raises(CallerHungUp):
        agi.command("HANGUP")  # nothing left: the connection is closed
